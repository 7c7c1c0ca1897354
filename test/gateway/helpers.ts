import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket } from 'undici';
import type { AgentCard } from '../../ans/index.js';
import { agentToken, createKeyAndCsr } from '../../src/client/index.js';
import { card, client } from '../helpers/api.js';

export const ZONE = 'agents.internal';

export interface TestAgent {
  id: string;
  fqdn: string;
  keyPem: string;
  certPem: string;
  chainPem: string;
  token(lifetimeSeconds?: number): Promise<string>;
}

/** Registers and approves an agent through the real API; returns its key, certificate and a token maker. */
export async function enrol(
  base: string,
  adminToken: string,
  label: string,
  over: Partial<AgentCard>,
): Promise<TestAgent> {
  const api = client(base);
  const fqdn = `${label}.${ZONE}`;
  const { keyPem, csrPem } = await createKeyAndCsr(fqdn);
  const r = await api.post<{ id: string }>('/v1/agents', { card: card(label, over), csr: csrPem });
  if (r.status !== 202) throw new Error(`register ${label}: ${r.status} ${JSON.stringify(r.body)}`);
  const a = await api.post<{ certificate: string; chain: string }>(`/v1/agents/${r.body.id}/approve`, {}, adminToken);
  if (a.status !== 200) throw new Error(`approve ${label}: ${a.status} ${JSON.stringify(a.body)}`);
  const agent: TestAgent = {
    id: r.body.id,
    fqdn,
    keyPem,
    certPem: a.body.certificate,
    chainPem: a.body.chain,
    token: (lifetimeSeconds = 240) =>
      agentToken({
        agentId: r.body.id,
        zone: ZONE,
        keyPem,
        certificatePem: a.body.certificate,
        chainPem: a.body.chain,
        lifetimeSeconds,
      }),
  };
  return agent;
}

export interface Upstream {
  url: string;
  port: number;
  server: Server;
  seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  sockets: Set<Socket>;
  /** Sockets with a request whose answer has not finished (an idle pooled socket is not busy). */
  busy: Set<Socket>;
  close(): Promise<void>;
}

/** A plain Node HTTP upstream; `handler` answers, and every request is recorded. */
export async function upstream(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const sockets = new Set<Socket>();
  const busy = new Set<Socket>();
  const server = createServer((req, res) => {
    const sock = req.socket;
    busy.add(sock);
    res.on('finish', () => busy.delete(sock));
    sock.on('close', () => busy.delete(sock));
    const chunks: Buffer[] = [];
    if (req.headers['x-test-stream-body'] === '1') {
      handler(req, res, '');
      return;
    }
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    sockets,
    busy,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An A2A `message/send` JSON-RPC body addressed to a skill (`params.metadata.skillId`). */
export const sendToSkill = (skillId: string): string =>
  JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'message/send',
    params: {
      message: { role: 'user', parts: [{ kind: 'text', text: 'go' }], messageId: 'm1' },
      metadata: { skillId },
    },
  });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `f` is truthy or the time is up. */
export async function eventually<T>(f: () => T | Promise<T>, ms = 5000, step = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(step);
  }
}

/** Sends bytes as they are on a fresh TCP connection; resolves with everything read until close or `ms`. */
export async function rawHttp(
  port: number,
  text: string | Buffer,
  ms = 3000,
): Promise<{ status: number; head: string; body: string; raw: string }> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(text));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(), ms);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const final = raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const i = final.indexOf('\r\n\r\n');
      const head = i < 0 ? final : final.slice(0, i);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (!m && raw.length > 0) reject(new Error(`not HTTP: ${raw.slice(0, 200)}`));
      let body = i < 0 ? '' : final.slice(i + 4);
      if (/transfer-encoding: chunked/i.test(head)) body = dechunk(body);
      resolve({ status: m ? Number(m[1]) : 0, head, body, raw });
    });
  });
}

function dechunk(s: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const nl = s.indexOf('\r\n', at);
    if (nl < 0) return out;
    const n = parseInt(s.slice(at, nl), 16);
    if (!n) return out;
    out += s.slice(nl + 2, nl + 2 + n);
    at = nl + 2 + n + 2;
  }
}

/** A minimal RFC 6455 server: echoes text as `echo:<text>` and binary as is; `bye` makes it close. */
export interface WsServer {
  port: number;
  server: Server;
  handshakes: IncomingMessage[];
  sockets: Set<Socket>;
  closesSeen: number;
  close(): Promise<void>;
}

export function frame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([0x80 | opcode, n])
      : n < 65536
        ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 255])
        : Buffer.concat([
            Buffer.from([0x80 | opcode, 127]),
            (() => {
              const b = Buffer.alloc(8);
              b.writeBigUInt64BE(BigInt(n));
              return b;
            })(),
          ]);
  return Buffer.concat([head, payload]);
}

export async function wsServer(): Promise<WsServer> {
  const handshakes: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const state = { closesSeen: 0 };
  const server = createServer((req, res) =>
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no websocket here'),
  );
  server.on('upgrade', (req: IncomingMessage, sock: Socket) => {
    if (req.url?.includes('/silent')) {
      sockets.add(sock); // never answers the upgrade
      sock.on('close', () => sockets.delete(sock));
      sock.on('end', () => sock.end());
      sock.on('error', () => undefined);
      return;
    }
    if (req.url?.includes('/nows')) {
      sock.end('HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 17\r\n\r\nno websocket here');
      return;
    }
    handshakes.push(req);
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.on('end', () => sock.end()); // an upgraded socket is half-open: close when the peer does
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    const proto = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')[0]
      ?.trim();
    sock.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${
        proto ? `Sec-WebSocket-Protocol: ${proto}\r\n` : ''
      }X-Upstream: ws\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    let parts: Buffer[] = [];
    let first = 0;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        const fin = (buf[0]! & 0x80) !== 0;
        const op = buf[0]! & 0x0f;
        let len = buf[1]! & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          at = 10;
        }
        if (buf.length < at + 4 + len) return;
        const mask = buf.subarray(at, at + 4);
        const data = Buffer.from(buf.subarray(at + 4, at + 4 + len));
        for (let i = 0; i < data.length; i++) data[i]! ^= mask[i % 4]!;
        buf = buf.subarray(at + 4 + len);
        if (op === 8) {
          state.closesSeen++;
          sock.end(frame(8, data.subarray(0, 2)));
          return;
        }
        if (op === 9) {
          sock.write(frame(10, data));
          continue;
        }
        if (op !== 0) first = op;
        parts.push(data);
        if (!fin) continue;
        const msg = Buffer.concat(parts);
        parts = [];
        if (first === 1 && msg.toString() === 'bye') {
          sock.write(frame(8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('done')])));
        } else if (first === 1) sock.write(frame(1, Buffer.from(`echo:${msg.toString()}`)));
        else sock.write(frame(2, msg));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    handshakes,
    sockets,
    get closesSeen() {
      return state.closesSeen;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A WebSocket (undici's client) opened with the agent token `t`. */
export function openWs(url: string, t: string, protocols?: string[]): Promise<WebSocket> {
  const sock = new WebSocket(url, { headers: { authorization: `Bearer ${t}` }, ...(protocols ? { protocols } : {}) });
  sock.binaryType = 'arraybuffer';
  return new Promise((res, rej) => {
    sock.addEventListener('open', () => res(sock));
    sock.addEventListener('error', () => rej(new Error('the WebSocket did not open')));
  });
}

export function next(sock: WebSocket): Promise<string | Buffer> {
  return new Promise((res) =>
    sock.addEventListener(
      'message',
      (m) => res(typeof m.data === 'string' ? m.data : Buffer.from(m.data as ArrayBuffer)),
      { once: true },
    ),
  );
}

export function closed(sock: WebSocket): Promise<{ code: number; reason: string; wasClean: boolean }> {
  return new Promise((res) =>
    sock.addEventListener('close', (e) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean }), {
      once: true,
    }),
  );
}

/** A self-signed certificate for 127.0.0.1 (the HTTPS server's own; the ANS CA does not issue it yet). */
export function serverCertificate(): { dir: string; certFile: string; keyFile: string; certPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ans-tls-'));
  const certFile = join(dir, 'srv.pem');
  const keyFile = join(dir, 'srv.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  return { dir, certFile, keyFile, certPem: readFileSync(certFile, 'utf8') };
}
