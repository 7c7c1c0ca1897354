import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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
