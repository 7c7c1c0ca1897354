/**
 * Our secondary against another implementation: Knot DNS as the primary (compressed names, its
 * own TSIG signing, IXFR from its journal), our DnsServer as the TSIG secondary following its
 * NOTIFY. The zone is a master file Knot loads and reloads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DnsLogger, DnsServer } from '../../dns/index.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/wait.js';
import { answerLines, dig, digStatus, has, sh, startServer } from './helpers.js';

const SECRET = randomBytes(32).toString('base64');
const TLSA = 'AB'.repeat(32);

function zoneFile(serial: number, extra = ''): string {
  return `$ORIGIN knot.internal.
$TTL 60
@ 300 SOA ns1 hostmaster ${serial} 3600 1 7200 60
@ 3600 NS ns1
ns1 3600 A 127.0.0.1
_a2a._tcp.weather SRV 10 1 8443 weather-host.example.
_8443._tcp.weather TLSA 3 1 1 ${TLSA}
weather TXT "v=ans1; id=agt_weather" "second string"
${extra}
`;
}

describe.skipIf(!has('knotd') || !has('knotc') || !has('dig'))('secondary of a Knot DNS primary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ans-knot-primary-'));
  let knot: ChildProcess;
  let knotPort: number;
  let ours: { server: DnsServer; port: number };
  const lines: string[] = [];
  const log: DnsLogger = { info: (_o, m) => lines.push(m ?? ''), warn: (_o, m) => lines.push(m ?? ''), error() {} };
  const knotc = (...args: string[]) => sh('knotc', ['-s', join(dir, 'knot.sock'), ...args]);

  beforeAll(async () => {
    knotPort = await freePort();
    const port = await freePort();
    writeFileSync(join(dir, 'knot.internal.zone'), zoneFile(1));
    writeFileSync(
      join(dir, 'knot.conf'),
      `server:
    rundir: "${dir}"
    listen: 127.0.0.1@${knotPort}
control:
    listen: "${dir}/knot.sock"
database:
    storage: "${dir}"
log:
  - target: stderr
    any: info
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: ${SECRET}
remote:
  - id: ours
    address: 127.0.0.1@${port}
    key: xfr
acl:
  - id: to_ours
    address: 127.0.0.1
    key: xfr
    action: transfer
zone:
  - domain: knot.internal
    file: "${dir}/%s.zone"
    storage: "${dir}"
    notify: ours
    acl: to_ours
    zonefile-load: difference
    journal-content: changes
`,
    );
    knot = spawn('knotd', ['-c', join(dir, 'knot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    await until(async () =>
      digStatus(await dig(knotPort, 'SOA', 'knot.internal').catch(() => '')) === 'NOERROR' ? true : undefined,
    );
    ours = await startServer([], {
      port,
      tsigKeys: [{ name: 'xfr', algorithm: 'hmac-sha256', secret: SECRET }],
      secondaries: [{ zone: 'knot.internal', primary: `127.0.0.1:${knotPort}`, key: 'xfr' }],
      log,
    });
  });
  afterAll(async () => {
    await ours?.server.stop();
    knot?.kill('SIGTERM');
  });

  it("serves Knot's zone: SRV, TLSA and a two-string TXT, authoritatively", async () => {
    const srv = await until(async () => {
      const o = await dig(ours.port, 'SRV', '_a2a._tcp.weather.knot.internal');
      return answerLines(o).length ? o : undefined;
    });
    expect(srv).toMatch(/flags: qr aa/);
    expect(answerLines(srv)[0]).toMatch(/SRV\s+10 1 8443 weather-host\.example\.$/);
    expect((await dig(ours.port, '+short', 'TLSA', '_8443._tcp.weather.knot.internal')).trim()).toBe(
      `3 1 1 ${TLSA.slice(0, 56)} ${TLSA.slice(56)}`,
    );
    expect((await dig(ours.port, '+short', 'TXT', 'weather.knot.internal')).trim()).toBe(
      '"v=ans1; id=agt_weather" "second string"',
    );
    expect(lines).toContain('dns: secondary AXFR');
  });

  it("follows Knot's NOTIFY after a reload, by IXFR from Knot's journal", async () => {
    writeFileSync(join(dir, 'knot.internal.zone'), zoneFile(2, 'new TXT "added"'));
    await knotc('zone-reload', 'knot.internal');
    await until(async () => (answerLines(await dig(ours.port, 'TXT', 'new.knot.internal')).length ? true : undefined));
    expect(ours.server.secondarySerials).toEqual({ 'knot.internal': 2 });
    expect(lines).toContain('dns: NOTIFY received, refreshing');
    expect(lines).toContain('dns: secondary IXFR');
    expect(answerLines(await dig(ours.port, 'SRV', '_a2a._tcp.weather.knot.internal'))).toHaveLength(1);
  });
});
