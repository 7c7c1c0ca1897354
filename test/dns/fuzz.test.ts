import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { DnsServer } from '../../dns/index.js';
import { ipAgent, query, startServer, tcpAsk, udpAsk, weather } from './helpers.js';

/** Deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

const seeds = [
  query('_a2a._tcp.weather.agents.internal', 33, { edns: { payload: 4096, do: true } }),
  query('weather.agents.internal', 16),
  query('agents.internal', 252),
  query('agents.internal', 6, { edns: {} }),
];

function mutate(r: () => number): Buffer {
  const kind = Math.floor(r() * 8);
  const base = Buffer.from(seeds[Math.floor(r() * seeds.length)]!);
  const n = (k: number) => Math.floor(r() * k);
  switch (kind) {
    case 0: // random bytes
      return Buffer.from(Array.from({ length: n(600) }, () => n(256)));
    case 1: // truncated
      return base.subarray(0, n(base.length));
    case 2: // bit flips
      for (let i = 0; i < 1 + n(6); i++) base[n(base.length)]! ^= 1 << n(8);
      return base;
    case 3: {
      // compression pointer loop in the question
      const b = Buffer.from(base.subarray(0, 12));
      return Buffer.concat([b, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    }
    case 4: {
      // label length past the end
      const b = Buffer.from(base);
      b[12] = 63;
      return b.subarray(0, 20);
    }
    case 5: // huge counts
      base.writeUInt16BE(n(0x10000), 4 + 2 * n(4));
      return base;
    case 6: {
      // records appended with wild RDLENGTHs
      const extra = Buffer.from(Array.from({ length: n(40) }, () => n(256)));
      base.writeUInt16BE(n(4), 6 + 2 * n(3));
      return Buffer.concat([base, extra]);
    }
    default: {
      // a valid header with random flags/opcodes
      base.writeUInt16BE(n(0x10000), 2);
      return base;
    }
  }
}

describe('fuzz: malformed packets never crash or stall the server', () => {
  let server: DnsServer;
  let port: number;
  beforeAll(async () => {
    ({ server, port } = await startServer([weather, ipAgent]));
  });
  afterAll(async () => {
    await server.stop();
  });

  it('survives 100k random and mutated UDP packets, answering a valid query after each batch', async () => {
    const r = rng(0xa115);
    const sock = createSocket('udp4');
    sock.on('message', () => {});
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
    const total = 100_000;
    const batch = 5_000;
    for (let sent = 0; sent < total; sent += batch) {
      for (let i = 0; i < batch; i++) {
        sock.send(mutate(r), port, '127.0.0.1');
        if (i % 500 === 499) await new Promise((res) => setImmediate(res));
      }
      const ok = await udpAsk(port, query('weather.agents.internal', 16, { id: sent & 0xffff }), 3000);
      expect(ok, `no answer after ${sent + batch} packets`).not.toBeNull();
      expect(ok!.readUInt16BE(0)).toBe(sent & 0xffff);
    }
    sock.close();
  }, 90_000);

  it('survives mutated messages over TCP', async () => {
    const r = rng(7);
    for (let c = 0; c < 40; c++) {
      await new Promise<void>((res) => {
        const s = connect(port, '127.0.0.1', () => {
          for (let i = 0; i < 50; i++) {
            const m = mutate(r);
            const l = Buffer.alloc(2);
            l.writeUInt16BE(r() < 0.1 ? Math.floor(r() * 65536) : m.length);
            s.write(Buffer.concat([l, m]));
          }
          s.end();
        });
        s.on('data', () => {});
        s.on('error', () => res());
        s.on('close', () => res());
        setTimeout(() => {
          s.destroy();
          res();
        }, 300);
      });
    }
    const [ok] = await tcpAsk(port, [query('weather.agents.internal', 16)]);
    expect(ok![3]! & 0x0f).toBe(0);
  });
});

describe('slow and half-open TCP clients', () => {
  it('evicts idle connections beyond the cap and keeps answering', async () => {
    const { server, port } = await startServer([weather], { tcpMaxConnections: 50, tcpIdleMs: 2000 });
    const idle = [] as ReturnType<typeof connect>[];
    for (let i = 0; i < 200; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      if (i % 2) s.on('connect', () => s.write(Buffer.from([0, 40, 1]))); // half a message, then silence
      idle.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    const [ok] = await tcpAsk(port, [query('weather.agents.internal', 16)]);
    expect(ok![3]! & 0x0f).toBe(0);
    expect(await udpAsk(port, query('weather.agents.internal', 16))).not.toBeNull();
    for (const s of idle) s.destroy();
    await server.stop();
  });
});
