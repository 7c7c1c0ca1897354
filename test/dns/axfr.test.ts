import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DnsServer } from '../../dns/index.js';
import { dig, has, query, rcode, sh, startServer, synthAgent, udpAsk, weather } from './helpers.js';

const SECRET = Buffer.from('ans-test-secret-0123456789abcdef').toString('base64');

describe('AXFR (RFC 5936) and IXFR (RFC 1995)', () => {
  let server: DnsServer;
  let port: number;
  const N = 3000;
  beforeAll(async () => {
    ({ server, port } = await startServer(
      [weather, ...Array.from({ length: N }, (_, i) => synthAgent(i))],
      {
        tsigKeys: [{ name: 'xfr-key', algorithm: 'hmac-sha256', secret: SECRET }],
        journalSize: 3,
      },
      500,
    ));
  });
  afterAll(async () => {
    await server.stop();
  });

  it('transfers a big zone over several messages (dig)', async () => {
    const out = await dig(port, 'AXFR', 'agents.internal');
    const m = /XFR size: (\d+) records \(messages (\d+), bytes (\d+)\)/.exec(out);
    expect(m).not.toBeNull();
    // SOA + NS + glue + weather (6) + 6 per synthetic agent + closing SOA
    expect(Number(m![1])).toBe(3 + 6 + N * 6 + 1);
    expect(Number(m![2])).toBeGreaterThan(4);
    expect(Number(m![3])).toBeGreaterThan(65536);
    expect(out).toMatch(
      /_a2a\._tcp\.agent2999\.agents\.internal\.\s+60\s+IN\s+SRV\s+10 1 8443 host2999\.example\.com\./,
    );
  });

  it('transfers with kdig and ends with the SOA', async () => {
    const out = await sh('kdig', ['@127.0.0.1', '-p', String(port), 'AXFR', 'agents.internal']);
    const lines = out.split('\n').filter((l) => /\tIN\t/.test(l));
    expect(lines[0]).toMatch(/SOA/);
    expect(lines[lines.length - 1]).toMatch(/SOA/);
    expect(lines.length).toBe(3 + 6 + N * 6 + 1);
  });

  it('accepts TSIG-signed AXFR (dig -y) and signs every message', async () => {
    const out = await dig(port, '-y', `hmac-sha256:xfr-key:${SECRET}`, 'AXFR', 'agents.internal');
    expect(out).toMatch(/XFR size/);
    expect(out).not.toMatch(/tsig verify failure|failed/i);
    const k = await sh('kdig', [
      '@127.0.0.1',
      '-p',
      String(port),
      '-y',
      `hmac-sha256:xfr-key:${SECRET}`,
      'AXFR',
      'agents.internal',
    ]);
    expect(k).toMatch(/TSIG/);
    expect(k).not.toMatch(/WARNING|failed|BADSIG/);
  });

  it('refuses a wrong TSIG key (NOTAUTH)', async () => {
    const wrong = Buffer.from('another-secret-another-secret!!').toString('base64');
    const out = await dig(port, '-y', `hmac-sha256:xfr-key:${wrong}`, 'AXFR', 'agents.internal').catch(
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    expect(out).toMatch(/NOTAUTH|tsig|Transfer failed/i);
    expect(out).not.toMatch(/XFR size/);
    const unknown = await dig(port, '-y', `hmac-sha256:nokey:${SECRET}`, 'SOA', 'agents.internal').catch(
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    expect(unknown).toMatch(/NOTAUTH|BADKEY/);
  });

  it('IXFR: incremental after a few changes, single SOA when current, AXFR form when the journal is short', async () => {
    const s0 = server.serial;
    server.upsert({ ...weather, id: 'agt_ix', fqdn: 'ix.agents.internal' }, 501);
    server.remove('agt_1', 502);
    const inc = await dig(port, `IXFR=${s0}`, 'agents.internal');
    expect(inc).toMatch(/_a2a\._tcp\.ix\.agents\.internal\./);
    expect(inc).toMatch(/agent1\.agents\.internal\./); // the removal
    expect(inc).not.toMatch(/agent2999/); // not the whole zone
    const soaLines = inc.split('\n').filter((l) => /\tSOA\t/.test(l));
    expect(soaLines.length).toBe(6); // new, (old, new) x2, new
    const current = await dig(port, `IXFR=${server.serial}`, 'agents.internal');
    expect(current.split('\n').filter((l) => /\tIN\t/.test(l))).toHaveLength(1);
    // the journal keeps 3 changes: a client 4 changes behind gets the full zone
    server.upsert(synthAgent(5000), 503);
    server.upsert(synthAgent(5001), 504);
    const full = await dig(port, `IXFR=${s0}`, 'agents.internal');
    expect(full).toMatch(/agent2999/);
    const k = await sh('kdig', ['@127.0.0.1', '-p', String(port), `IXFR=${502}`, 'agents.internal']);
    expect(k).toMatch(/agent5000/);
    expect(k).not.toMatch(/agent2999/);
  });

  it('AXFR over UDP is not answered as a transfer', async () => {
    const res = (await udpAsk(port, query('agents.internal', 252)))!;
    expect(rcode(res)).toBe(1);
    expect(res.readUInt16BE(6)).toBe(0);
  });

  it.skipIf(!has('kdig'))('kdig is present', () => {
    expect(has('kdig')).toBe(true);
  });
});
