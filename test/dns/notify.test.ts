import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import type { DnsServer } from '../../dns/index.js';
import { notifyMessage, parseTarget } from '../../dns/notify.js';
import { freePort } from '../helpers/ports.js';
import { has, sh, startServer, synthAgent, weather } from './helpers.js';
import { startKnot, type Knot } from './knot.js';

const SECRET = Buffer.from('knot-secondary-secret-0123456789').toString('base64');

async function until(f: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

describe('NOTIFY (RFC 1996)', () => {
  it('parses targets', () => {
    expect(parseTarget('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseTarget('[::1]:53')).toEqual({ host: '::1', port: 53 });
    expect(() => parseTarget('nohost:53')).toThrow();
  });

  it('sends NOTIFY with the new SOA on each change and retries until answered', async () => {
    const sink = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    sink.on('message', (m, rinfo) => {
      got.push(m);
      if (got.length >= 2) {
        const resp = Buffer.from(m.subarray(0, 12));
        resp[2] = resp[2]! | 0x80;
        sink.send(resp, rinfo.port, rinfo.address);
      }
    });
    const { server } = await startServer([weather], { notify: [`127.0.0.1:${sink.address().port}`] }, 10);
    server.upsert(synthAgent(1), 11);
    const ok = await until(async () => got.length >= 2, 6000);
    await server.stop();
    sink.close();
    expect(ok).toBe(true);
    const m = got[0]!;
    expect((m[2]! >>> 3) & 0x0f).toBe(4); // opcode NOTIFY
    expect(m[2]! & 0x04).toBe(4); // AA
    expect(m.readUInt32BE(m.length - 20)).toBe(11); // serial in the SOA rdata
    expect(notifyMessage(1, 'agents.internal', server['engine'].zone.soa).length).toBeGreaterThan(40);
  });
});

describe.skipIf(!has('knotd'))('Knot DNS as a real secondary (TSIG, NOTIFY, IXFR)', () => {
  let server: DnsServer;
  let knot: Knot;
  beforeAll(async () => {
    const knotPort = await freePort();
    ({ server } = await startServer(
      [weather],
      {
        notify: [`127.0.0.1:${knotPort}`],
        tsigKeys: [{ name: 'knot-key', algorithm: 'hmac-sha256', secret: SECRET }],
      },
      7,
    ));
    knot = startKnot({
      port: knotPort,
      primaryPort: server.listeningPort,
      zone: 'agents.internal',
      key: { name: 'knot-key', secret: SECRET },
    });
  });
  afterAll(async () => {
    await knot?.stop();
    await server?.stop();
  });

  const kq = (type: string, name: string) =>
    sh('kdig', ['@127.0.0.1', '-p', String(knot.port), '+short', '+time=1', '+retry=0', type, name]);

  it('transfers the zone, then follows an upsert after our NOTIFY', async () => {
    const first = await until(async () => (await kq('SOA', 'agents.internal')).includes(' 7 '));
    if (!first) console.warn(knot.log());
    expect(first).toBe(true);
    expect((await kq('SRV', '_a2a._tcp.weather.agents.internal')).trim()).toBe('10 1 8443 weather-host.example.');
    server.upsert(
      {
        ...weather,
        id: 'agt_k',
        fqdn: 'knotted.agents.internal',
        endpoints: [{ protocol: 'mcp', url: 'https://knotted.example:9443/' }],
      },
      8,
    );
    const seen = await until(
      async () => (await kq('SRV', '_mcp._tcp.knotted.agents.internal')).trim() === '10 1 9443 knotted.example.',
    );
    if (!seen) console.warn(knot.log());
    expect(seen).toBe(true);
    expect((await kq('SOA', 'agents.internal')).split(' ')[2]).toBe('8');
    expect(knot.log()).toMatch(/IXFR|AXFR/);
    server.remove('agt_k', 9);
    const gone = await until(async () => (await kq('SRV', '_mcp._tcp.knotted.agents.internal')).trim() === '');
    expect(gone).toBe(true);
  });
});
