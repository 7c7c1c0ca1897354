/**
 * Bad input and bad upstreams: each ends with a clear status (or a cut connection once the
 * answer has started) and no socket left open.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, eventually, rawHttp, sleep, upstream, type TestAgent, type Upstream } from './helpers.js';

let s: RunningServer;
let api: ReturnType<typeof client>;
let caller: TestAgent;
let token: string;
const ups: Upstream[] = [];
const agents: Record<string, TestAgent> = {};

async function agentWith(label: string, handler: Parameters<typeof upstream>[0]): Promise<Upstream> {
  const u = await upstream(handler);
  ups.push(u);
  agents[label] = await enrol(s.url, s.adminToken, label, { endpoints: [{ protocol: 'http', url: `${u.url}/x` }] });
  return u;
}

let hang: Upstream;
let resetMid: Upstream;
let resetEarly: Upstream;
let slowBody: Upstream;
let echo: Upstream;

beforeAll(async () => {
  // Request headers must be complete within a second (the slow-loris headers test).
  s = await startServer({ args: ['--headers-timeout', '1'] });
  api = client(s.url);
  const put = await api.put(
    '/v1/gateway/settings',
    { firstByteTimeoutMs: 600, idleTimeoutMs: 600, requestBodyIdleMs: 600, connectTimeoutMs: 500, bodyLimit: 65_536 },
    s.adminToken,
  );
  expect(put.status).toBe(200);
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  token = await caller.token();
  hang = await agentWith('hang', () => undefined);
  resetMid = await agentWith('resetmid', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '100000' });
    res.write(Buffer.alloc(10_000));
    setTimeout(() => res.socket?.destroy(), 50);
  });
  resetEarly = await agentWith('resetearly', (req) => req.socket.destroy());
  slowBody = await agentWith('slowbody', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first');
    // then nothing: the gateway's idle timeout must cut it
  });
  echo = await agentWith('echo', (_req, res, body) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${body.length}`),
  );
});
afterAll(async () => {
  await s?.stop();
  await Promise.all(ups.map((u) => u.close()));
});

const gw = (label: string, path = 'p', init: RequestInit = {}) =>
  fetch(`${s.url}/gw/${agents[label]!.fqdn}/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
  });

describe('bad upstreams', () => {
  it('an upstream that never answers: 504 after the first-byte timeout, and its socket is closed', async () => {
    const r = await gw('hang');
    expect(r.status).toBe(504);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_UPSTREAM_TIMEOUT');
    await eventually(() => hang.busy.size === 0, 3000);
  });

  it('an upstream that resets before answering: 502', async () => {
    const r = await gw('resetearly', 'p', { method: 'POST', body: 'x' });
    expect(r.status).toBe(502);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_BAD_UPSTREAM');
    expect(resetEarly.busy.size).toBe(0);
  });

  it('an upstream that resets mid-body: the client sees the response cut, not a hang', async () => {
    const r = await gw('resetmid');
    expect(r.status).toBe(200);
    await expect(r.arrayBuffer()).rejects.toThrow();
    await eventually(() => resetMid.busy.size === 0, 3000);
  });

  it('an upstream that stalls mid-body: cut after the idle timeout', async () => {
    const r = await gw('slowbody');
    expect(r.status).toBe(200);
    await expect(r.text()).rejects.toThrow();
    await eventually(() => slowBody.busy.size === 0, 3000);
  });
});

describe('bad clients', () => {
  it('413 for a declared body over the limit, before anything is sent upstream', async () => {
    const before = echo.seen.length;
    const r = await gw('echo', 'p', { method: 'POST', body: Buffer.alloc(70_000) });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_BODY_TOO_LARGE');
    expect(echo.seen.length).toBe(before);
  });

  it('413 for a chunked body that grows over the limit', async () => {
    const big = Buffer.alloc(80_000, 97);
    const head = `POST /gw/${agents['echo']!.fqdn}/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const body = Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]);
    const r = await rawHttp(s.httpPort, Buffer.concat([Buffer.from(head), body]));
    expect(r.status).toBe(413);
  });

  it('bodies under the limit stream through, chunked or not', async () => {
    const r = await gw('echo', 'p', { method: 'POST', body: Buffer.alloc(60_000) });
    expect(await r.text()).toBe('got 60000');
  });

  it('Expect: 100-continue (curl does it for larger bodies) is answered here and not forwarded', async () => {
    const body = 'x'.repeat(2000);
    const r = await rawHttp(
      s.httpPort,
      `POST /gw/${agents['echo']!.fqdn}/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n${body}`,
    );
    expect(r.raw).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(r.status).toBe(200);
    expect(r.body).toBe('got 2000');
    expect(echo.seen.at(-1)?.headers['expect']).toBeUndefined();
  });

  it('431 for oversized headers', async () => {
    const r = await rawHttp(
      s.httpPort,
      `GET /gw/${agents['echo']!.fqdn}/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(r.status).toBe(431);
  });

  it('400 for CR/LF injection in a header or in the path', async () => {
    const a = await rawHttp(
      s.httpPort,
      `GET /gw/${agents['echo']!.fqdn}/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-A: a\rInjected: 1\r\n\r\n`,
    );
    expect(a.status).toBe(400);
    const b = await rawHttp(
      s.httpPort,
      `GET /gw/${agents['echo']!.fqdn}/p%0d%0aInjected:%201 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(b.status).toBe(400);
    expect(echo.seen.some((x) => 'injected' in x.headers)).toBe(false);
  });

  it('a slow-loris body is cut with 408, and other clients are served meanwhile', async () => {
    const socks = Array.from({ length: 20 }, () => {
      const sock = connect(s.httpPort, '127.0.0.1');
      sock.on('error', () => undefined);
      sock.write(
        `POST /gw/${agents['echo']!.fqdn}/p HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 1000\r\n\r\nabc`,
      );
      return sock;
    });
    const got: string[] = [];
    socks[0]!.on('data', (d: Buffer) => got.push(d.toString()));
    // Served while the 20 stalled bodies hold their connections open.
    const ok = await gw('echo', 'p', { method: 'POST', body: 'hi' });
    expect(await ok.text()).toBe('got 2');
    await eventually(() => got.join('').length > 0, 4000);
    expect(got.join('')).toMatch(/^HTTP\/1\.1 408/);
    for (const x of socks) x.destroy();
  });

  it('a slow-loris client dripping its headers byte by byte gets 408 and the server closes it', async () => {
    const sock = connect(s.httpPort, '127.0.0.1');
    sock.on('error', () => undefined);
    const got: string[] = [];
    let ended = false;
    let closed = false;
    sock.on('data', (d: Buffer) => got.push(d.toString()));
    sock.on('end', () => (ended = true));
    sock.on('close', () => (closed = true));
    const head = `GET /gw/${agents['echo']!.fqdn}/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Slow: `;
    let i = 0;
    // One byte every 50 ms, and the headers never end.
    const drip = setInterval(() => {
      if (!sock.destroyed) sock.write(i < head.length ? head[i++]! : 'a');
    }, 50);
    try {
      // Meanwhile other clients are served.
      const ok = await gw('echo', 'p', { method: 'POST', body: 'hi' });
      expect(await ok.text()).toBe('got 2');
      await eventually(() => closed, 10_000);
    } finally {
      clearInterval(drip);
      sock.destroy();
    }
    expect(got.join('')).toMatch(/^HTTP\/1\.1 408/);
    expect(ended).toBe(true); // the server ended the connection: nothing of it is left open
    expect(echo.seen.some((x) => x.url.endsWith('/slow'))).toBe(false);
  });

  it('a client that goes away mid-request leaves no upstream socket behind', async () => {
    const ac = new AbortController();
    const p = gw('hang', 'p', { signal: ac.signal }).catch(() => 'aborted');
    await sleep(100);
    ac.abort();
    expect(await p).toBe('aborted');
    await eventually(() => hang.busy.size === 0, 3000);
  });
});
