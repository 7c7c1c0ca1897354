/**
 * Peers' zones as DNS secondaries, through real `ans serve` processes: GW1 (one.internal) serves
 * GW2's zone (two.internal) from AXFR/IXFR with TSIG, following GW2's NOTIFY, and drops it once
 * GW2 has been gone for the SOA expire time. Queried with dig and kdig.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerLines, digStatus, has, sh } from '../dns/helpers.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/wait.js';
import { enrol, established, startNet, type Net } from './net.js';

const KEY = `xfr:hmac-sha256:${randomBytes(32).toString('base64')}`;
const dig = (port: number, ...args: string[]) =>
  sh('dig', ['@127.0.0.1', '-p', String(port), '+norec', '+time=2', '+tries=1', ...args]);
const serialOf = async (port: number) => (await dig(port, '+short', 'SOA', 'two.internal')).trim().split(/\s+/)[2];

describe.skipIf(!has('dig') || !has('kdig'))("a peer's zone as a DNS secondary", () => {
  let net: Net;
  const dns: number[] = [];
  beforeAll(async () => {
    dns.push(await freePort(), await freePort());
    // Node 0 is GW2 (the primary of two.internal), node 1 is GW1 (its secondary).
    net = await startNet(
      [
        { zone: 'two.internal', role: 'l2', peers: [] },
        { zone: 'one.internal', role: 'l2', peers: [0] },
      ],
      (i) =>
        i === 0
          ? ['--dns-port', String(dns[0]), '--tsig-key', KEY, '--notify', `127.0.0.1:${dns[1]}`]
              // refresh far away (changes must come through NOTIFY); a short expire for the last test
              .concat(['--soa-refresh', '3600', '--soa-retry', '1', '--soa-expire', '3600'])
          : ['--dns-port', String(dns[1]), '--tsig-key', KEY, '--secondary', `two.internal@127.0.0.1:${dns[0]}:xfr`],
    );
    await established(net.urls[1]!, 1);
  });
  afterAll(async () => {
    await net?.stop();
  });

  it('answers SRV for an agent of the peer, authoritatively, at the primary serial', async () => {
    await enrol(net.urls[0]!, net.servers[0]!.adminToken, 'two.internal', 'agent2');
    const out = await until(async () => {
      const o = await dig(dns[1]!, 'SRV', '_a2a._tcp.agent2.two.internal');
      return answerLines(o).length ? o : undefined;
    });
    expect(out).toMatch(/flags: qr aa/);
    expect(answerLines(out)[0]).toMatch(/SRV\s+10 1 8443 agent2\.two\.internal\.$/);
    expect(out).toMatch(/agent2\.two\.internal\.\s+60\s+IN\s+A\s+127\.0\.0\.1/); // glue
    await until(async () => ((await serialOf(dns[1]!)) === (await serialOf(dns[0]!)) ? true : undefined));
    const tlsa = await sh('kdig', [
      '@127.0.0.1',
      '-p',
      String(dns[1]),
      '+short',
      'TLSA',
      '_8443._tcp.agent2.two.internal',
    ]);
    expect(tlsa.trim()).toMatch(/^3 1 1 [0-9A-F]{64}$/);
    const metrics = await (await fetch(`${net.urls[1]}/metrics`)).text();
    expect(metrics).toContain(`ans_dns_secondary_serial{zone="two.internal"} ${await serialOf(dns[1]!)}`);
    // GW1's own zone is still its own
    expect(digStatus(await dig(dns[1]!, 'SOA', 'one.internal'))).toBe('NOERROR');
  });

  it('follows a change on the primary through NOTIFY and IXFR', async () => {
    const before = await serialOf(dns[1]!);
    await enrol(net.urls[0]!, net.servers[0]!.adminToken, 'two.internal', 'agent3');
    await until(async () =>
      answerLines(await dig(dns[1]!, 'SRV', '_a2a._tcp.agent3.two.internal')).length ? true : undefined,
    );
    const after = await serialOf(dns[1]!);
    expect(Number(after)).toBeGreaterThan(Number(before));
    expect(after).toBe(await serialOf(dns[0]!));
    const logs = net.servers[1]!.logs.join('\n');
    expect(logs).toContain('dns: NOTIFY received, refreshing');
    expect(logs).toContain('dns: secondary IXFR');
  });

  it('drops the zone (SERVFAIL) after the SOA expire time once the primary is killed', async () => {
    // Restart GW2 with a short expire so the test does not wait an hour; GW1 picks it up by IXFR.
    await net.servers[0]!.stop();
    const gw2 = await net.restart(0, ['--soa-refresh', '2', '--soa-expire', '4']);
    await enrol(net.urls[0]!, gw2.adminToken, 'two.internal', 'agent4');
    await until(async () =>
      answerLines(await dig(dns[1]!, 'SRV', '_a2a._tcp.agent4.two.internal')).length ? true : undefined,
    );
    gw2.proc.kill('SIGKILL');
    await until(
      async () =>
        digStatus(await dig(dns[1]!, 'SRV', '_a2a._tcp.agent2.two.internal')) === 'SERVFAIL' ? true : undefined,
      20_000,
    );
    expect(net.servers[1]!.logs.join('\n')).toContain('dns: secondary zone expired');
  });
});
