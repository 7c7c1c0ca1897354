/**
 * The forwarding core through a real `ans serve` and real upstreams: auth, policy, the problem
 * answers (401/403/404/409/503/504), header hygiene and URL rewriting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { expandCalls, type CallBatchDetail } from '../../src/gateway/audit.js';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, eventually, rawHttp, upstream, type TestAgent, type Upstream } from './helpers.js';

let s: RunningServer;
let api: ReturnType<typeof client>;
let up: Upstream;
let caller: TestAgent;
let target: TestAgent;
let token: string;

beforeAll(async () => {
  s = await startServer({ args: ['--heartbeat-interval', '1'] });
  api = client(s.url);
  up = await upstream((req, res, body) => {
    if (req.url?.startsWith('/api/redirect')) {
      res.writeHead(302, { location: `${up.url}/api/elsewhere?x=1` }).end();
      return;
    }
    if (req.url?.startsWith('/api/relative')) {
      res.writeHead(201, { location: '/api/items/7' }).end();
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/json',
      'x-upstream': 'yes',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
    });
    res.end(JSON.stringify({ method: req.method, url: req.url, body, headers: req.headers }));
  });
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/none' }],
  });
  target = await enrol(s.url, s.adminToken, 'target', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
  token = await caller.token();
});
afterAll(async () => {
  await s?.stop();
  await up?.close();
});

const gw = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
  fetch(`${s.url}/gw/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });

describe('forwarding', () => {
  it('forwards method, path, query and body to <endpoint>/<rest>, and the answer back', async () => {
    const r = await gw(`${target.fqdn}/items/1?q=a%20b&z=1`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      body: 'hello',
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-upstream')).toBe('yes');
    expect(r.headers.get('keep-alive')).not.toBe('timeout=5');
    const j = (await r.json()) as { method: string; url: string; body: string; headers: Record<string, string> };
    expect(j.method).toBe('POST');
    expect(j.url).toBe('/api/items/1?q=a%20b&z=1');
    expect(j.body).toBe('hello');
    expect(j.headers['traceparent']).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(j.headers['authorization']).toBeUndefined();
    expect(j.headers['ans-caller']).toBe(caller.fqdn);
    expect(j.headers['ans-caller-id']).toBe(caller.id);
    expect(j.headers['host']).toBe(new URL(up.url).host);
  });

  it('names case-insensitively, with or without the trailing dot, and the bare endpoint for an empty rest', async () => {
    const r = await gw(`TARGET.Agents.Internal./`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { url: string }).url).toBe('/api');
  });

  it('drops hop-by-hop headers and those named in Connection, and spoofed identity headers', async () => {
    const r = await rawHttp(
      s.httpPort,
      `GET /gw/${target.fqdn}/h HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close, x-secret\r\nX-Secret: 1\r\nTE: trailers\r\nANS-Caller: evil.example\r\n\r\n`,
    );
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(j.headers['x-secret']).toBeUndefined();
    expect(j.headers['te']).toBeUndefined();
    expect(j.headers['ans-caller']).toBe(caller.fqdn);
  });

  it('rewrites Location (absolute and relative) to the gateway', async () => {
    const r = await gw(`${target.fqdn}/redirect`, { headers: {} });
    // fetch follows redirects: the final hop must have gone through the gateway again
    expect(r.url).toBe(`${s.url}/gw/${target.fqdn}/elsewhere?x=1`);
    const r2 = await request(`${s.url}/gw/${target.fqdn}/relative`, { headers: { authorization: `Bearer ${token}` } });
    await r2.body.dump();
    expect(r2.statusCode).toBe(201);
    expect(r2.headers['location']).toBe(`${s.url}/gw/${target.fqdn}/items/7`);
  });
});

describe('refusals', () => {
  it('401 without a token, with a bad token, and with an admin token 403', async () => {
    const none = await fetch(`${s.url}/gw/${target.fqdn}/x`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toContain('application/problem+json');
    expect(((await none.json()) as { code: string }).code).toBe('GW_ERR_NO_CREDENTIAL');
    const bad = await fetch(`${s.url}/gw/${target.fqdn}/x`, { headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { code: string }).code).toBe('GW_ERR_BAD_CREDENTIAL');
    const adm = await fetch(`${s.url}/gw/${target.fqdn}/x`, { headers: { authorization: `Bearer ${s.adminToken}` } });
    expect(adm.status).toBe(403);
  });

  it('404 for unknown names and names outside the zone, 400 for malformed names', async () => {
    const u = await gw('nobody.agents.internal/x');
    expect(u.status).toBe(404);
    expect(((await u.json()) as { code: string }).code).toBe('GW_ERR_UNKNOWN_AGENT');
    const o = await gw('weather.example.com/x');
    expect(o.status).toBe(404);
    expect(((await o.json()) as { code: string }).code).toBe('GW_ERR_OUTSIDE_ZONE');
    expect((await gw('bad_name!.agents.internal/x')).status).toBe(400);
    expect((await gw('agents.internal/x')).status).toBe(404); // the apex is no agent
  });

  it('400 for path traversal, plain or encoded', async () => {
    for (const p of [
      'a/../../b',
      'a/%2e%2e/b',
      '%2E%2E',
      '.%2e/x',
      'a/..%2fetc',
      'a%5c..',
      'x/%00',
      'a\\..\\b',
      'x/%0d%0aInjected:%201',
    ]) {
      const r = await rawHttp(
        s.httpPort,
        `GET /gw/${target.fqdn}/${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status, p).toBe(400);
      expect(r.head).toContain('application/problem+json');
    }
    expect(up.seen.some((x) => x.url.includes('..') || /%2e/i.test(x.url))).toBe(false);
  });

  it('409 for a pending agent, 404 once it is rejected', async () => {
    const { createKeyAndCsr } = await import('../../src/client/index.js');
    const { card } = await import('../helpers/api.js');
    const { csrPem } = await createKeyAndCsr('pending.agents.internal');
    const r = await api.post<{ id: string }>('/v1/agents', { card: card('pending'), csr: csrPem });
    const p = await gw('pending.agents.internal/x');
    expect(p.status).toBe(409);
    expect(((await p.json()) as { code: string }).code).toBe('GW_ERR_NOT_ACTIVE');
    await api.post(`/v1/agents/${r.body.id}/reject`, { reason: 'test' }, s.adminToken);
    await eventually(async () => (await gw('pending.agents.internal/x')).status === 404, 3000);
  });

  it('503 when the upstream refuses connections', async () => {
    const dead = await enrol(s.url, s.adminToken, 'dead', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/x' }],
    });
    const r = await gw(`${dead.fqdn}/y`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_UNREACHABLE');
  });

  it('403 when a policy denies, and allowed again once it is removed', async () => {
    const p = await api.post<{ id: string }>(
      '/v1/policies',
      { caller: caller.fqdn, target: '*.agents.internal', effect: 'deny' },
      s.adminToken,
    );
    expect(p.status).toBe(201);
    const list = await api.get<{ items: { id: string }[] }>('/v1/policies', s.adminToken);
    expect(list.body.items.map((x) => x.id)).toContain(p.body.id);
    const r = await gw(`${target.fqdn}/x`);
    expect(r.status).toBe(403);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_DENIED');
    expect((await api.del(`/v1/policies/${p.body.id}`, s.adminToken)).status).toBe(200);
    expect((await gw(`${target.fqdn}/x`)).status).toBe(200);
    expect(
      (await api.post('/v1/policies', { caller: 'not a name', target: '*', effect: 'allow' }, s.adminToken)).status,
    ).toBe(400);
    expect((await api.post('/v1/policies', { caller: '*', target: '*', effect: 'allow' }, token)).status).toBe(403);
  });

  it('503 for an agent gone offline (missed heartbeats)', async () => {
    const o = await enrol(s.url, s.adminToken, 'sleepy', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
    const t = await o.token();
    expect((await api.post(`/v1/agents/${o.id}/heartbeat`, {}, t)).status).toBe(200);
    expect((await gw(`${o.fqdn}/x`)).status).toBe(200);
    await eventually(async () => (await gw(`${o.fqdn}/x`)).status === 503, 8000, 250);
    const r = await gw(`${o.fqdn}/x`);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_OFFLINE');
  });

  it('refuses a revoked caller', async () => {
    const c2 = await enrol(s.url, s.adminToken, 'revokee', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
    const t2 = await c2.token();
    const call = () => fetch(`${s.url}/gw/${target.fqdn}/x`, { headers: { authorization: `Bearer ${t2}` } });
    expect((await call()).status).toBe(200); // verified and cached
    const rv = await api.post(`/v1/agents/${c2.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken);
    expect(rv.status).toBe(200);
    await eventually(async () => (await call()).status === 401, 10_000, 20);
  });
});

describe('control plane', () => {
  it('shows who called whom in /v1/graph and writes calls to the audit log', async () => {
    const g = await api.get<{ edges: { caller: string; target: string; calls: number; errors: number }[] }>(
      '/v1/graph',
      s.adminToken,
    );
    expect(g.status).toBe(200);
    const e = g.body.edges.find((x) => x.caller === caller.fqdn && x.target === target.fqdn);
    expect(e?.calls).toBeGreaterThan(3);
    const audit = await eventually(async () => {
      const a = await api.get<{ entries: { action: string; detail: CallBatchDetail }[] }>(
        '/v1/audit?limit=1000',
        s.adminToken,
      );
      const calls = a.body.entries.filter((x) => x.action === 'gateway.calls').flatMap((x) => expandCalls(x.detail));
      return calls.length > 3 ? calls : undefined;
    });
    expect(
      audit!.some(
        (x) =>
          x.caller === caller.fqdn &&
          x.target === target.fqdn &&
          x.status === 200 &&
          x.method === 'POST' &&
          x.bytesIn === 5,
      ),
    ).toBe(true);
    const v = await api.get<{ ok: boolean }>('/v1/audit/verify', s.adminToken);
    expect(v.body.ok).toBe(true);
  });

  it('graph, approvals and settings are admin only', async () => {
    expect((await api.get('/v1/graph')).status).toBe(401);
    expect((await api.get('/v1/approvals', token)).status).toBe(403);
    expect((await api.get('/v1/gateway/settings', s.adminToken)).status).toBe(200);
  });
});

describe('rate limits', () => {
  it('429 with Retry-After once a caller spends its burst', async () => {
    expect((await api.put('/v1/gateway/settings', { ratePerMinute: 60, rateBurst: 3 }, s.adminToken)).status).toBe(200);
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await gw(`${target.fqdn}/rl`);
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get('retry-after');
        expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_RATE_LIMITED');
      } else await r.arrayBuffer();
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    await api.put('/v1/gateway/settings', { ratePerMinute: 600_000, rateBurst: 10_000 }, s.adminToken);
  });

  it('bad settings are a 400 and change nothing', async () => {
    expect((await api.put('/v1/gateway/settings', { connectTimeoutMs: -1 }, s.adminToken)).status).toBe(400);
    expect((await api.put('/v1/gateway/settings', { nope: 1 }, s.adminToken)).status).toBe(400);
    expect(
      (await api.put('/v1/gateway/settings', { agents: { [target.fqdn]: { balancer: 'random' } } }, s.adminToken))
        .status,
    ).toBe(400);
    const cur = await api.get<{ connectTimeoutMs: number }>('/v1/gateway/settings', s.adminToken);
    expect(cur.body.connectTimeoutMs).toBe(5000);
  });
});
