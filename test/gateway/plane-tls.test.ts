/**
 * Data-plane workers behind HTTPS: when `ans serve` has `--tls-cert/--tls-key`, the workers'
 * port serves HTTPS too (TLS 1.3), with agent JWTs and ANS client certificates (mutual TLS).
 */
import { connect } from 'node:net';
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { freePort } from '../helpers/ports.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, eventually, serverCertificate, upstream, type TestAgent, type Upstream } from './helpers.js';

let s: RunningServer;
let base: string;
let api: ReturnType<typeof client>;
let up: Upstream;
let caller: TestAgent;
let target: TestAgent;
let port: number;
let caPem: string;
const before = getGlobalDispatcher();
const agents: Agent[] = [];

function tlsAgent(cert?: string, key?: string): Agent {
  const a = new Agent({ connect: { ca: caPem, ...(cert && key ? { cert, key } : {}) } });
  agents.push(a);
  return a;
}

async function plane(d: Agent, path: string, headers: Record<string, string> = {}) {
  const r = await request(`https://127.0.0.1:${port}/gw/${path}`, { dispatcher: d, headers });
  const text = await r.body.text();
  return { status: r.statusCode, text };
}

beforeAll(async () => {
  const srv = serverCertificate();
  caPem = srv.certPem;
  s = await startServer({ args: ['--tls-cert', srv.certFile, '--tls-key', srv.keyFile] });
  base = `https://127.0.0.1:${s.httpPort}`;
  setGlobalDispatcher(tlsAgent());
  api = client(base);
  up = await upstream((req, res) => res.end(`caller=${String(req.headers['ans-caller'])} ${req.url}`));
  caller = await enrol(base, s.adminToken, 'caller', { endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }] });
  target = await enrol(base, s.adminToken, 'target', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
  port = await freePort();
  const r = await api.put('/v1/gateway/settings', { dataPlane: { port, workers: 1 } }, s.adminToken);
  expect(r.status).toBe(200);
  const probe = tlsAgent();
  await eventually(
    async () => (await plane(probe, `${target.fqdn}/`).catch(() => ({ status: 0 }))).status === 401,
    20_000,
    100,
  );
});
afterAll(async () => {
  setGlobalDispatcher(before);
  await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
  await s?.stop();
  await up?.close();
});

describe('HTTPS data-plane workers', () => {
  it('forward for a client certificate and for a bearer token', async () => {
    const byCert = await plane(tlsAgent(`${caller.certPem}\n${caller.chainPem}`, caller.keyPem), `${target.fqdn}/a`);
    expect(byCert).toEqual({ status: 200, text: `caller=${caller.fqdn} /api/a` });
    const byToken = await plane(tlsAgent(), `${target.fqdn}/b`, { authorization: `Bearer ${await caller.token()}` });
    expect(byToken).toEqual({ status: 200, text: `caller=${caller.fqdn} /api/b` });
  });

  it('refuse a call without credentials: 401', async () => {
    const r = await plane(tlsAgent(), `${target.fqdn}/x`);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.text)).toMatchObject({ code: 'GW_ERR_NO_CREDENTIAL' });
  });

  it('do not speak plain HTTP', async () => {
    const answer = await new Promise<string>((res) => {
      const sock = connect(port, '127.0.0.1', () => sock.write(`GET /gw/${target.fqdn}/x HTTP/1.1\r\nHost: x\r\n\r\n`));
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
      sock.on('error', () => undefined);
      sock.on('close', () => res(got));
      setTimeout(() => sock.destroy(), 3000);
    });
    expect(answer).not.toMatch(/^HTTP\//);
  });

  it('refuse a revoked certificate: 403', async () => {
    const rv = await enrol(base, s.adminToken, 'revokee', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    const d = tlsAgent(`${rv.certPem}\n${rv.chainPem}`, rv.keyPem);
    await eventually(async () => (await plane(d, `${target.fqdn}/x`)).status === 200, 3000);
    expect((await api.post(`/v1/agents/${rv.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken)).status).toBe(200);
    await eventually(async () => (await plane(d, `${target.fqdn}/x`)).status === 403, 10_000, 20);
    const fresh = await plane(tlsAgent(`${rv.certPem}\n${rv.chainPem}`, rv.keyPem), `${target.fqdn}/x`);
    expect(fresh.status).toBe(403);
    expect(JSON.parse(fresh.text)).toMatchObject({ code: 'GW_ERR_CLIENT_CERT_REFUSED' });
  });
});
