/**
 * WebSocket through `/gw/<fqdn>/<path>`: a real WebSocket client (undici's, RFC 6455) through a
 * real `ans serve` to a small RFC 6455 server written here (the `ws` package is not a
 * dependency): echo both ways, sub-protocol negotiation, large messages, clean close from
 * either side, the refusals, and tunnels cut when the caller is revoked.
 */
import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import type { WebSocket } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandCalls, type CallBatchDetail } from '../../src/gateway/audit.js';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import {
  closed,
  enrol,
  eventually,
  next,
  openWs,
  upstream,
  wsServer,
  type TestAgent,
  type Upstream,
  type WsServer,
} from './helpers.js';

const open = (url: string, t = token, protocols?: string[]): Promise<WebSocket> => openWs(url, t, protocols);

let s: RunningServer;
let api: ReturnType<typeof client>;
let ws: WsServer;
let plain: Upstream;
let caller: TestAgent;
let target: TestAgent;
let token: string;

beforeAll(async () => {
  s = await startServer();
  api = client(s.url);
  ws = await wsServer();
  plain = await upstream((req, res) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ url: req.url, upgrade: req.headers.upgrade ?? null })),
  );
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  target = await enrol(s.url, s.adminToken, 'chat', {
    endpoints: [{ protocol: 'http', url: `http://127.0.0.1:${ws.port}/ws` }],
  });
  token = await caller.token();
});
afterAll(async () => {
  await s?.stop();
  await ws?.close();
  await plain?.close();
});

const wsUrl = (path: string) => `ws://127.0.0.1:${s.httpPort}/gw/${path}`;

/** A hand-made upgrade request; resolves with the answer's status and body (101: no body). */
function upgradeRequest(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((res, rej) => {
    const r = request({
      host: '127.0.0.1',
      port: s.httpPort,
      path,
      method,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    r.on('upgrade', (resp, sock) => {
      sock.destroy();
      res({ status: resp.statusCode ?? 0, body: '', headers: resp.headers });
    });
    r.on('response', (resp) => {
      let body = '';
      resp.on('data', (c: Buffer) => (body += c.toString()));
      resp.on('end', () => res({ status: resp.statusCode ?? 0, body, headers: resp.headers }));
    });
    r.on('error', rej);
    r.end();
  });
}

describe('WebSocket through the gateway', () => {
  it('opens a tunnel to the agent: messages both ways, the caller identity added, the token not', async () => {
    const sock = await open(wsUrl(`${target.fqdn}/room?x=1`), token, ['chat', 'other']);
    expect(sock.protocol).toBe('chat'); // the agent's Sec-WebSocket-Protocol came back
    sock.send('hello');
    expect(await next(sock)).toBe('echo:hello');
    sock.send('again');
    expect(await next(sock)).toBe('echo:again');
    const h = ws.handshakes.at(-1)!;
    expect(h.url).toBe('/ws/room?x=1');
    expect(h.headers['ans-caller']).toBe(caller.fqdn);
    expect(h.headers['ans-caller-id']).toBe(caller.id);
    expect(h.headers['authorization']).toBeUndefined();
    const done = closed(sock);
    sock.close(1000, 'client done');
    const c = await done;
    expect(c.wasClean).toBe(true);
    expect(c.code).toBe(1000);
    await eventually(() => ws.sockets.size === 0);
  });

  it('carries large binary messages intact in both directions', async () => {
    const sock = await open(wsUrl(`${target.fqdn}/bin`));
    const big = randomBytes(3 * 1024 * 1024 + 17);
    sock.send(big);
    const back = (await next(sock)) as Buffer;
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
    sock.close();
    await closed(sock);
  });

  it('closes cleanly when the agent closes', async () => {
    const sock = await open(wsUrl(`${target.fqdn}/room`));
    const done = closed(sock);
    sock.send('bye');
    const c = await done;
    expect(c).toMatchObject({ code: 1000, reason: 'done', wasClean: true });
    await eventually(() => ws.sockets.size === 0);
  });

  it('records the tunnel once it closes (status 101, bytes each way) in the graph and the audit log', async () => {
    const sock = await open(wsUrl(`${target.fqdn}/audited`));
    sock.send('x'.repeat(1000));
    await next(sock);
    sock.close();
    await closed(sock);
    const calls: ReturnType<typeof expandCalls> = await eventually(async () => {
      const a = await api.get<{ entries: { action: string; detail: CallBatchDetail }[] }>(
        '/v1/audit?limit=1000',
        s.adminToken,
      );
      const all = a.body.entries.filter((e) => e.action === 'gateway.calls').flatMap((e) => expandCalls(e.detail));
      const mine = all.filter((c) => c.path === `/gw/${target.fqdn}/audited` && c.status === 101);
      return mine.length > 0 ? mine : (undefined as never);
    });
    expect(calls[0]).toMatchObject({ caller: caller.fqdn, target: target.fqdn, method: 'GET' });
    expect(calls[0]!.bytesIn).toBeGreaterThan(1000);
    expect(calls[0]!.bytesOut).toBeGreaterThan(1000);
    const g = await api.get<{ edges: { caller: string; target: string; calls: number; errors: number }[] }>(
      '/v1/graph',
      s.adminToken,
    );
    const e = g.body.edges.find((x) => x.caller === caller.fqdn && x.target === target.fqdn);
    expect(e?.calls).toBeGreaterThan(0);
    expect(e?.errors).toBe(0);
  });

  it('refuses an upgrade without credentials: 401 problem, no tunnel', async () => {
    const before = ws.handshakes.length;
    const r = await upgradeRequest(`/gw/${target.fqdn}/room`);
    expect(r.status).toBe(401);
    expect(r.headers['content-type']).toMatch(/problem\+json/);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'GW_ERR_NO_CREDENTIAL', status: 401 });
    expect(ws.handshakes.length).toBe(before);
  });

  it('answers unknown names, bad paths and non-GET upgrades with their problems', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const unknown = await upgradeRequest(`/gw/nobody.agents.internal/room`, auth);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).code).toBe('GW_ERR_UNKNOWN_AGENT');
    const trav = await upgradeRequest(`/gw/${target.fqdn}/a/%2e%2e/b`, auth);
    expect(trav.status).toBe(400);
    expect(JSON.parse(trav.body).code).toBe('GW_ERR_BAD_PATH');
    const outside = await upgradeRequest(`/gw/x.example.com/room`, auth);
    expect(outside.status).toBe(404);
    expect(JSON.parse(outside.body).code).toBe('GW_ERR_OUTSIDE_ZONE');
    const post = await upgradeRequest(`/gw/${target.fqdn}/room`, auth, 'POST');
    expect(post.status).toBe(400);
    expect(JSON.parse(post.body).code).toBe('GW_ERR_BAD_HEADER');
    const withBody = await upgradeRequest(`/v1/agents`, { ...auth, 'content-length': '2' }, 'POST');
    expect(withBody.status).toBe(400);
  });

  it('applies policy: a denied caller gets 403, and an open tunnel closes when a deny lands', async () => {
    const other = await enrol(s.url, s.adminToken, 'other', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    const t = await other.token();
    const sock = await open(wsUrl(`${target.fqdn}/room`), t);
    const done = closed(sock);
    const p = await api.post('/v1/policies', { caller: other.fqdn, target: target.fqdn, effect: 'deny' }, s.adminToken);
    expect(p.status).toBe(201);
    await done;
    const r = await upgradeRequest(`/gw/${target.fqdn}/room`, { authorization: `Bearer ${t}` });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).code).toBe('GW_ERR_DENIED');
  });

  it('holds the upgrade for a human when every skill of the agent needs approval', async () => {
    const vault = await enrol(s.url, s.adminToken, 'vault', {
      skills: [{ id: 'open', name: 'Open', description: 'Opens the vault', requireHumanApproval: true }],
      endpoints: [{ protocol: 'http', url: `http://127.0.0.1:${ws.port}/ws` }],
    });
    const ticket = () =>
      eventually(async () => {
        const r = await api.get<{ items: { id: string; target: string; path: string }[] }>(
          '/v1/approvals',
          s.adminToken,
        );
        return r.body.items.find((i) => i.target === vault.fqdn);
      });
    const before = ws.handshakes.length;
    const opening = open(wsUrl(`${vault.fqdn}/open`));
    const t = (await ticket())!;
    expect(t.path).toBe('/open');
    expect(ws.handshakes.length).toBe(before); // nothing reached the agent yet
    expect((await api.post(`/v1/approvals/${t.id}/approve`, {}, s.adminToken)).status).toBe(200);
    const sock = await opening;
    sock.send('in');
    expect(await next(sock)).toBe('echo:in');
    sock.close();
    await closed(sock);
    const denied = upgradeRequest(`/gw/${vault.fqdn}/open`, { authorization: `Bearer ${token}` });
    const t2 = (await ticket())!;
    await api.post(`/v1/approvals/${t2.id}/deny`, {}, s.adminToken);
    const r = await denied;
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).code).toBe('GW_ERR_APPROVAL_DENIED');
  });

  it('passes the agent refusing the upgrade back as is', async () => {
    const r = await upgradeRequest(`/gw/${target.fqdn}/nows`, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(404);
    expect(r.body).toBe('no websocket here');
  });

  it('tries another replica when one refuses the connection', async () => {
    const rep = await enrol(s.url, s.adminToken, 'replicas', {
      endpoints: [
        { protocol: 'http', url: 'http://127.0.0.1:9/ws' },
        { protocol: 'http', url: `http://127.0.0.1:${ws.port}/ws` },
      ],
    });
    // Round-robin alternates, so one of these two opens meets the dead replica first.
    for (let i = 0; i < 2; i++) {
      const sock = await open(wsUrl(`${rep.fqdn}/r${i}`));
      sock.send(`r${i}`);
      expect(await next(sock)).toBe(`echo:r${i}`);
      sock.close();
      await closed(sock);
    }
  });

  it('answers 503 when the agent cannot be reached', async () => {
    const down = await enrol(s.url, s.adminToken, 'down', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/ws' }],
    });
    const r = await upgradeRequest(`/gw/${down.fqdn}/room`, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).code).toBe('GW_ERR_UNREACHABLE');
  });

  it('answers 504 when the agent never answers the upgrade, and leaves no socket behind', async () => {
    const api2 = client(s.url);
    expect((await api2.put('/v1/gateway/settings', { firstByteTimeoutMs: 300 }, s.adminToken)).status).toBe(200);
    try {
      const r = await upgradeRequest(`/gw/${target.fqdn}/silent`, { authorization: `Bearer ${token}` });
      expect(r.status).toBe(504);
      expect(JSON.parse(r.body).code).toBe('GW_ERR_UPSTREAM_TIMEOUT');
      await eventually(() => ws.sockets.size === 0);
    } finally {
      await api2.put('/v1/gateway/settings', { firstByteTimeoutMs: 60_000 }, s.adminToken);
    }
  });

  it('closes an open tunnel when its caller is revoked', async () => {
    const rv = await enrol(s.url, s.adminToken, 'revokee', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    const sock = await open(wsUrl(`${target.fqdn}/room`), await rv.token());
    sock.send('hi');
    expect(await next(sock)).toBe('echo:hi');
    const done = closed(sock);
    const r = await api.post(`/v1/agents/${rv.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken);
    expect(r.status).toBe(200);
    await done;
    await eventually(() => ws.sockets.size === 0);
  });

  it('serves other upgrade requests as plain HTTP', async () => {
    // Outside /gw/: Fastify answers as usual.
    const h = await upgradeRequest('/healthz');
    expect(h.status).toBe(200);
    // Under /gw/ but not a WebSocket (h2c): forwarded as an ordinary request, Upgrade dropped.
    const p = await enrol(s.url, s.adminToken, 'plain', { endpoints: [{ protocol: 'http', url: `${plain.url}/api` }] });
    const r = await upgradeRequest(`/gw/${p.fqdn}/x`, { upgrade: 'h2c', authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ url: '/api/x', upgrade: null });
  });
});
