import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { DnsServer, DnsLogger } from '../../dns/index.js';
import { parseSecondary } from '../../dns/index.js';
import { notifyMessage } from '../../dns/notify.js';
import { encodeRR } from '../../dns/wire.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/wait.js';
import { answerLines, dig, digStatus, has, rcode, startServer, synthAgent, udpAsk, weather } from './helpers.js';

const key = (secret: string) => ({ name: 'xfr', algorithm: 'hmac-sha256' as const, secret });
const SECRET = randomBytes(32).toString('base64');

/** A logger that keeps its messages, so tests can see which path the server took. */
function recorder(): DnsLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (_o: object, msg?: string) => void lines.push(msg ?? '');
  return { lines, info: push, warn: push, error: push };
}

async function pair(
  soa: { refresh: number; retry: number; expire: number },
  o: { secondaryKey?: string; journalSize?: number; workers?: number } = {},
) {
  const { secondaryKey = SECRET, journalSize, workers } = o;
  const port = await freePort();
  const primary = await startServer([weather], {
    tsigKeys: [key(SECRET)],
    notify: [`127.0.0.1:${port}`],
    soa,
    ...(journalSize ? { journalSize } : {}),
  });
  const log = recorder();
  const secondary = await startServer([], {
    zone: 'other.internal.',
    port,
    tsigKeys: [key(secondaryKey)],
    secondaries: [{ zone: 'agents.internal', primary: `127.0.0.1:${primary.port}`, key: 'xfr' }],
    log,
    ...(workers ? { workers } : {}),
  });
  return { primary, secondary, log };
}

describe.skipIf(!has('dig'))('DNS secondary (AXFR/IXFR with TSIG, NOTIFY-driven)', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  let A: DnsServer;
  let B: { server: DnsServer; port: number };
  beforeAll(async () => {
    // Refresh an hour away: anything that arrives sooner came through NOTIFY.
    p = await pair({ refresh: 3600, retry: 1, expire: 7200 });
    A = p.primary.server;
    B = p.secondary;
  });
  afterAll(async () => {
    await B.server.stop();
    await A.stop();
  });

  it('parses --secondary specs', () => {
    expect(parseSecondary('home.internal.@127.0.0.1:5300:xfr')).toEqual({
      zone: 'home.internal',
      primary: '127.0.0.1:5300',
      key: 'xfr',
    });
    expect(parseSecondary('home.internal@[::1]:53')).toEqual({ zone: 'home.internal', primary: '::1:53' });
    for (const bad of ['home.internal', 'home.internal@host:53', 'home.internal@127.0.0.1:0', '@1.2.3.4:53'])
      expect(() => parseSecondary(bad)).toThrow(/ZONE@IP:PORT/);
  });

  it("answers the primary's records authoritatively, at the primary's serial", async () => {
    const out = await until(async () => {
      const o = await dig(B.port, 'SRV', '_a2a._tcp.weather.agents.internal');
      return answerLines(o).length ? o : undefined;
    });
    expect(out).toMatch(/flags: qr aa/);
    expect(answerLines(out)[0]).toMatch(/SRV\s+10 1 8443 weather-host\.example\.$/);
    expect(await dig(B.port, '+short', 'TLSA', '_8443._tcp.weather.agents.internal')).toMatch(/^3 1 1 ABAB/);
    const soa = (port: number) => dig(port, '+short', 'SOA', 'agents.internal').then((s) => s.trim().split(/\s+/)[2]);
    expect(await soa(B.port)).toBe(String(A.serial));
    expect(digStatus(await dig(B.port, 'TXT', 'nope.agents.internal'))).toBe('NXDOMAIN');
    // its own zone is still its own; names in neither zone are refused
    expect(digStatus(await dig(B.port, 'SOA', 'other.internal'))).toBe('NOERROR');
    expect(digStatus(await dig(B.port, 'A', 'example.com'))).toBe('REFUSED');
    expect(p.log.lines).toContain('dns: secondary AXFR');
  });

  it("follows the primary's NOTIFY with an IXFR: additions and removals", async () => {
    A.upsert(synthAgent(1), 50);
    await until(async () =>
      answerLines(await dig(B.port, 'SRV', '_a2a._tcp.agent1.agents.internal')).length ? true : undefined,
    );
    expect(B.server.secondarySerials).toEqual({ 'agents.internal': 50 });
    expect(p.log.lines).toContain('dns: NOTIFY received, refreshing');
    expect(p.log.lines).toContain('dns: secondary IXFR');
    A.remove(weather.id, 51);
    await until(async () =>
      digStatus(await dig(B.port, 'SRV', '_a2a._tcp.weather.agents.internal')) === 'NXDOMAIN' ? true : undefined,
    );
    expect(answerLines(await dig(B.port, 'SRV', '_a2a._tcp.agent1.agents.internal'))).toHaveLength(1);
  });

  it('answers a secondary zone below its own zone from the secondary copy', async () => {
    const parent = await startServer([], {
      zone: 'internal.',
      secondaries: [{ zone: 'agents.internal', primary: `127.0.0.1:${p.primary.port}` }],
    });
    try {
      const out = await until(async () => {
        const o = await dig(parent.port, 'SRV', '_a2a._tcp.agent1.agents.internal');
        return answerLines(o).length ? o : undefined;
      });
      expect(out).toMatch(/flags: qr aa/);
      expect(digStatus(await dig(parent.port, 'SOA', 'internal'))).toBe('NOERROR');
    } finally {
      await parent.server.stop();
    }
  });

  it('refuses a NOTIFY that is unsigned or for a zone it does not hold', async () => {
    const bytes = encodeRR({
      ...{ name: 'agents.internal', ttl: 300, type: 6, mname: 'ns1.agents.internal', rname: 'h.agents.internal' },
      ...{ serial: 99, refresh: 1, retry: 1, expire: 1, minimum: 1 },
    });
    const soa = { name: 'agents.internal', type: 6, buf: bytes, off: 0, len: bytes.length, ownerLen: 17 };
    expect(rcode((await udpAsk(B.port, notifyMessage(7, 'agents.internal', soa)))!)).toBe(5);
    expect(rcode((await udpAsk(B.port, notifyMessage(8, 'unknown.internal', soa)))!)).toBe(5);
    expect(p.log.lines).toContain('dns: NOTIFY refused');
  });

  it('gets nothing with the wrong TSIG secret (SERVFAIL, never a stale or unsigned copy)', async () => {
    const q = await pair(
      { refresh: 3600, retry: 1, expire: 7200 },
      { secondaryKey: randomBytes(32).toString('base64') },
    );
    try {
      await until(async () => (q.log.lines.includes('dns: secondary refresh failed') ? true : undefined));
      expect(digStatus(await dig(q.secondary.port, 'SRV', '_a2a._tcp.weather.agents.internal'))).toBe('SERVFAIL');
    } finally {
      await q.secondary.server.stop();
      await q.primary.server.stop();
    }
  });

  it('survives a "primary" that answers junk: the refresh fails, logged, and the zone stays absent', async () => {
    const junk = createServer((sock) =>
      sock.once('data', (d) => {
        // the request's ID with QR set, then garbage where the records should be
        const m = Buffer.concat([d.subarray(2, 4), Buffer.from([0x80, 0]), randomBytes(300)]);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(m.length);
        sock.end(Buffer.concat([len, m]));
      }),
    );
    await new Promise<void>((r) => junk.listen(0, '127.0.0.1', r));
    const log = recorder();
    const port = (junk.address() as { port: number }).port;
    const s = await startServer([], {
      zone: 'other.internal.',
      secondaries: [{ zone: 'agents.internal', primary: `127.0.0.1:${port}` }],
      log,
    });
    try {
      await until(async () => (log.lines.includes('dns: secondary refresh failed') ? true : undefined));
      expect(digStatus(await dig(s.port, 'SRV', '_a2a._tcp.weather.agents.internal'))).toBe('SERVFAIL');
      expect(digStatus(await dig(s.port, 'SOA', 'other.internal'))).toBe('NOERROR');
    } finally {
      await s.server.stop();
      junk.close();
    }
  });

  it("takes the whole zone when the primary's journal no longer reaches its serial", async () => {
    const q = await pair({ refresh: 3600, retry: 1, expire: 7200 }, { journalSize: 1 });
    try {
      await until(async () => (q.secondary.server.secondarySerials['agents.internal'] === 1 ? true : undefined));
      // two changes before the secondary can ask: a journal of one cannot answer from serial 1
      q.primary.server.upsert(synthAgent(2), 10);
      q.primary.server.upsert(synthAgent(3), 11);
      await until(async () => (q.secondary.server.secondarySerials['agents.internal'] === 11 ? true : undefined));
      expect(q.log.lines.filter((l) => l === 'dns: secondary AXFR').length).toBeGreaterThanOrEqual(2);
      expect(answerLines(await dig(q.secondary.port, 'SRV', '_a2a._tcp.agent2.agents.internal'))).toHaveLength(1);
      expect(answerLines(await dig(q.secondary.port, 'SRV', '_a2a._tcp.agent3.agents.internal'))).toHaveLength(1);
    } finally {
      await q.secondary.server.stop();
      await q.primary.server.stop();
    }
  });

  it('serves the copy from DNS workers, which pass the NOTIFY they receive to the primary process', async () => {
    const q = await pair({ refresh: 3600, retry: 1, expire: 7200 }, { workers: 2 });
    try {
      const srv = (name: string) => dig(q.secondary.port, 'SRV', `_a2a._tcp.${name}.agents.internal`);
      await until(async () => (answerLines(await srv('weather')).length ? true : undefined));
      q.primary.server.upsert(synthAgent(5), 60);
      await until(async () => (answerLines(await srv('agent5')).length ? true : undefined));
      // then every answer has it, whichever worker takes the query (they share the sockets)
      for (let i = 0; i < 6; i++) expect(answerLines(await srv('agent5'))).toHaveLength(1);
      expect(q.log.lines).toContain('dns: NOTIFY received, refreshing');
      expect(q.log.lines).toContain('dns: secondary IXFR');
      expect(digStatus(await dig(q.secondary.port, 'SOA', 'other.internal'))).toBe('NOERROR');
    } finally {
      await q.secondary.server.stop();
      await q.primary.server.stop();
    }
  });

  it('drops the zone (SERVFAIL) once the SOA expire time passes without the primary', async () => {
    const q = await pair({ refresh: 1, retry: 1, expire: 3 });
    try {
      await until(async () =>
        answerLines(await dig(q.secondary.port, 'SRV', '_a2a._tcp.weather.agents.internal')).length ? true : undefined,
      );
      await q.primary.server.stop();
      await until(async () =>
        digStatus(await dig(q.secondary.port, 'SRV', '_a2a._tcp.weather.agents.internal')) === 'SERVFAIL'
          ? true
          : undefined,
      );
      expect(q.log.lines).toContain('dns: secondary refresh failed');
      expect(q.log.lines).toContain('dns: secondary zone expired');
    } finally {
      await q.secondary.server.stop();
    }
  });
});
