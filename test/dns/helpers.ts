import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { DnsServer, type DnsOptions, type ZoneAgent } from '../../dns/index.js';
import { encodeQuestion, parsePacket, type D2Packet } from '../../dns/wire.js';

const run = promisify(execFile);

export function has(tool: string): boolean {
  return ['/usr/bin/', '/usr/sbin/', '/bin/', '/sbin/', '/usr/local/bin/'].some((d) => existsSync(d + tool));
}

/** Runs a tool without blocking the event loop (the server under test lives in this process). */
export async function sh(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: timeoutMs, maxBuffer: 256 << 20 });
  return stdout;
}

export async function dig(port: number, ...args: string[]): Promise<string> {
  return sh('dig', ['@127.0.0.1', '-p', String(port), '+norec', '+time=2', '+tries=1', ...args]);
}

export const weather: ZoneAgent = {
  id: 'agt_weather',
  fqdn: 'weather.agents.internal',
  version: '1.2.0',
  endpoints: [
    { protocol: 'a2a', url: 'https://weather-host.example:8443/a2a' },
    { protocol: 'mcp', url: 'https://weather-host.example:8443/mcp', priority: 20, weight: 5 },
  ],
  spkiSha256: 'ab'.repeat(32),
};

export const ipAgent: ZoneAgent = {
  id: 'agt_ip',
  fqdn: 'local.agents.internal',
  version: '0.1.0',
  endpoints: [
    { protocol: 'http', url: 'http://10.1.2.3:8080/' },
    { protocol: 'a2a', url: 'https://[2001:db8::7]/a2a' },
  ],
  spkiSha256: null,
};

export function synthAgent(i: number): ZoneAgent {
  return {
    id: `agt_${i}`,
    fqdn: `agent${i}.agents.internal`,
    version: '1.0.0',
    endpoints: [
      { protocol: 'a2a', url: `https://host${i}.example.com:8443/a2a` },
      { protocol: 'mcp', url: `https://host${i}.example.com:8443/mcp` },
    ],
    spkiSha256: i.toString(16).padStart(64, '0'),
  };
}

export async function startServer(
  agents: ZoneAgent[],
  extra: Partial<DnsOptions> = {},
  serial = 1,
): Promise<{ server: DnsServer; port: number }> {
  const server = new DnsServer({
    zone: 'agents.internal.',
    host: '127.0.0.1',
    port: 0,
    publicUrl: 'http://127.0.0.1:8080',
    ...extra,
  });
  server.load(agents, serial);
  const { udpPort } = await server.start();
  return { server, port: udpPort };
}

/** A query built with dns2's encoders: header fields, one question, optional OPT. */
export function query(
  name: string,
  type: number,
  o: { id?: number; flags?: number; edns?: { payload?: number; version?: number; do?: boolean } } = {},
): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id ?? 0x1234, 0);
  h.writeUInt16BE(o.flags ?? 0x0100, 2);
  h.writeUInt16BE(1, 4);
  const parts = [h, encodeQuestion({ name, type, class: 1 })];
  if (o.edns) {
    h.writeUInt16BE(1, 10);
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(o.edns.payload ?? 1232, 3);
    opt[6] = o.edns.version ?? 0;
    opt[7] = o.edns.do ? 0x80 : 0;
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

export function udpAsk(port: number, msg: Buffer, timeoutMs = 1500): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(msg, port, '127.0.0.1');
  });
}

/** Sends several messages on one TCP connection, collects `expect` responses. */
export function tcpAsk(port: number, msgs: Buffer[], expect = msgs.length, timeoutMs = 5000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const s = connect(port, '127.0.0.1', () => {
      for (const m of msgs) {
        const l = Buffer.alloc(2);
        l.writeUInt16BE(m.length);
        s.write(Buffer.concat([l, m]));
      }
    });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`tcp timeout, got ${out.length}/${expect}`));
    }, timeoutMs);
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= expect) {
        clearTimeout(t);
        s.destroy();
        resolve(out);
      }
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export function parse(b: Buffer): D2Packet {
  return parsePacket(b);
}

export const rcode = (b: Buffer): number => b[3]! & 0x0f;
export const flags = (b: Buffer) => ({
  qr: !!(b[2]! & 0x80),
  aa: !!(b[2]! & 0x04),
  tc: !!(b[2]! & 0x02),
  rd: !!(b[2]! & 0x01),
});

/** The records of dig's ANSWER SECTION (empty when there is none). */
export function answerLines(digOutput: string): string[] {
  const m = /;; ANSWER SECTION:\n([\s\S]*?)(?:\n\n|$)/.exec(digOutput);
  return m ? m[1]!.split('\n').filter((l) => l.trim()) : [];
}

/** dig's status (NOERROR, NXDOMAIN, SERVFAIL, ...). */
export const digStatus = (digOutput: string): string | undefined => /status: ([A-Z]+)/.exec(digOutput)?.[1];
