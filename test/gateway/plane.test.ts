/** Data-plane workers: `/gw/` served by extra processes on their own port, state kept in step. */
import { get as httpGet } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandCalls, type CallBatchDetail } from '../../src/gateway/audit.js';
import { client } from '../helpers/api.js';
import { freePort } from '../helpers/ports.js';
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
} from './helpers.js';

let s: RunningServer;
let api: ReturnType<typeof client>;
let up: Upstream;
let caller: TestAgent;
let target: TestAgent;
let door: TestAgent;
let port: number;
let token: string;

beforeAll(async () => {
  s = await startServer();
  api = client(s.url);
  up = await upstream((req, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`pid-agnostic ${req.url}`),
  );
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  target = await enrol(s.url, s.adminToken, 'target', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
  door = await enrol(s.url, s.adminToken, 'door', {
    skills: [{ id: 'open', name: 'Open', description: 'Opens the door', requireHumanApproval: true }],
    endpoints: [{ protocol: 'http', url: `${up.url}/door` }],
  });
  token = await caller.token();
  port = await freePort();
  const r = await api.put('/v1/gateway/settings', { dataPlane: { port, workers: 2 } }, s.adminToken);
  expect(r.status).toBe(200);
  await eventually(
    async () => {
      try {
        return (
          (await fetch(`http://127.0.0.1:${port}/gw/${target.fqdn}/`, { signal: AbortSignal.timeout(1000) })).status ===
          401
        );
      } catch {
        return false;
      }
    },
    20_000,
    100,
  ).catch((e: unknown) => {
    throw new Error(`data plane did not come up: ${String(e)}\n${s.logs.slice(-15).join('\n')}`);
  });
});
afterAll(async () => {
  await s?.stop();
  await up?.close();
});

const plane = (path: string, bearer = token) =>
  fetch(`http://127.0.0.1:${port}/gw/${path}`, { headers: { authorization: `Bearer ${bearer}` } });

describe('data-plane workers', () => {
  it('forward like the main port, with the same refusals', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await plane(`${target.fqdn}/x?i=${i}`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(`pid-agnostic /api/x?i=${i}`);
    }
    expect((await plane('nobody.agents.internal/x')).status).toBe(404);
    expect((await plane('x.example.com/x')).status).toBe(404);
    expect((await plane(`${target.fqdn}/x`, 'garbage')).status).toBe(401);
  });

  it('report calls to the main process (graph, metrics)', async () => {
    await eventually(async () => {
      const g = await api.get<{ edges: { caller: string; target: string; calls: number }[] }>(
        '/v1/graph',
        s.adminToken,
      );
      return (g.body.edges.find((e) => e.caller === caller.fqdn && e.target === target.fqdn)?.calls ?? 0) >= 10;
    }, 3000);
    // and the audit log, call by call
    await eventually(async () => {
      const a = await api.get<{ entries: { action: string; detail: CallBatchDetail }[] }>(
        '/v1/audit?limit=1000',
        s.adminToken,
      );
      const calls = a.body.entries.filter((x) => x.action === 'gateway.calls').flatMap((x) => expandCalls(x.detail));
      const mine = calls.filter((c) => c.callerId === caller.id && c.target === target.fqdn && c.status === 200);
      return mine.length >= 10 && mine.every((c) => c.path.startsWith(`/gw/${target.fqdn}/x`) && c.bytesOut > 0);
    }, 5000);
  });

  it('follow policies and hold approvals in the main process', async () => {
    const p = await api.post<{ id: string }>(
      '/v1/policies',
      { caller: caller.fqdn, target: target.fqdn, effect: 'deny' },
      s.adminToken,
    );
    await eventually(async () => (await plane(`${target.fqdn}/x`)).status === 403, 3000);
    await api.del(`/v1/policies/${p.body.id}`, s.adminToken);
    await eventually(async () => (await plane(`${target.fqdn}/x`)).status === 200, 3000);
    const held = plane(`${door.fqdn}/open`);
    const t = await eventually(
      async () => (await api.get<{ items: { id: string }[] }>('/v1/approvals', s.adminToken)).body.items[0],
    );
    await api.post(`/v1/approvals/${t.id}/approve`, {}, s.adminToken);
    expect((await held).status).toBe(200);
  });

  it('cancel the ticket of a held caller that leaves', async () => {
    const gone = new AbortController();
    const held = fetch(`http://127.0.0.1:${port}/gw/${door.fqdn}/open`, {
      headers: { authorization: `Bearer ${token}` },
      signal: gone.signal,
    }).catch(() => 'aborted');
    const pending = async () => (await api.get<{ items: { id: string }[] }>('/v1/approvals', s.adminToken)).body.items;
    await eventually(async () => (await pending()).length === 1);
    gone.abort();
    expect(await held).toBe('aborted');
    await eventually(async () => (await pending()).length === 0);
  });

  it('refuse a revoked caller', async () => {
    const c2 = await enrol(s.url, s.adminToken, 'revokee', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
    const t2 = await c2.token();
    await eventually(async () => (await plane(`${target.fqdn}/x`, t2)).status === 200, 3000);
    await api.post(`/v1/agents/${c2.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken);
    await eventually(async () => (await plane(`${target.fqdn}/x`, t2)).status === 401, 10_000, 20);
  });

  it('carry WebSocket tunnels, closed when the caller is revoked', async () => {
    const ws = await wsServer();
    try {
      const chat = await enrol(s.url, s.adminToken, 'chat', {
        endpoints: [{ protocol: 'http', url: `http://127.0.0.1:${ws.port}/ws` }],
      });
      const c3 = await enrol(s.url, s.adminToken, 'talker', {
        endpoints: [{ protocol: 'http', url: `${up.url}/api` }],
      });
      const t3 = await c3.token();
      const url = `ws://127.0.0.1:${port}/gw/${chat.fqdn}/room`;
      const sock = (await eventually(() => openWs(url, t3).catch(() => undefined), 3000))!;
      sock.send('hi');
      expect(await next(sock)).toBe('echo:hi');
      expect(ws.handshakes.at(-1)!.headers['ans-caller']).toBe(c3.fqdn);
      const done = closed(sock);
      await api.post(`/v1/agents/${c3.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken);
      await done;
      await eventually(() => ws.sockets.size === 0);
    } finally {
      await ws.close();
    }
  });

  it('hold a caller to its rate across workers (the main process owns the buckets)', async () => {
    const burst = 20;
    const c4 = await enrol(s.url, s.adminToken, 'greedy', { endpoints: [{ protocol: 'http', url: `${up.url}/api` }] });
    const t4 = await c4.token();
    // One token a minute after the burst: nothing refills while the test runs.
    await api.put('/v1/gateway/settings', { ratePerMinute: 1, rateBurst: burst }, s.adminToken);
    try {
      // Each call on a connection of its own, all at once, so the kernel spreads them over
      // the workers; a refusal's request id names the process that answered (gw-<pid>-...).
      const call = () =>
        new Promise<{ status: number; id: string; retryAfter: string | undefined }>((resolve, reject) => {
          const r = httpGet(
            `http://127.0.0.1:${port}/gw/${target.fqdn}/x`,
            { agent: false, headers: { authorization: `Bearer ${t4}` } },
            (res) => {
              res.resume();
              res.on('end', () =>
                resolve({
                  status: res.statusCode!,
                  id: String(res.headers['x-request-id'] ?? ''),
                  retryAfter: res.headers['retry-after'] as string | undefined,
                }),
              );
            },
          );
          r.on('error', reject);
        });
      const answers: Awaited<ReturnType<typeof call>>[] = [];
      const refusers = new Set<string>();
      for (let round = 0; round < 5 && refusers.size < 2; round++) {
        answers.push(...(await Promise.all(Array.from({ length: 3 * burst }, call))));
        for (const a of answers) if (a.status === 429) refusers.add(a.id.split('-')[1]!);
      }
      expect(refusers.size).toBeGreaterThanOrEqual(2); // several workers served this caller
      const ok = answers.filter((a) => a.status === 200).length;
      const limited = answers.filter((a) => a.status === 429);
      expect(ok + limited.length).toBe(answers.length);
      // Per-worker buckets let up to workers x burst through; shared ones the burst at most
      // (less by what a worker still holds of its last lease: 2 tokens each here).
      expect(ok).toBeLessThanOrEqual(burst);
      expect(ok).toBeGreaterThanOrEqual(burst - 2 * 2);
      for (const a of limited) expect(Number(a.retryAfter)).toBeGreaterThan(0);
    } finally {
      await api.put('/v1/gateway/settings', { ratePerMinute: 600_000, rateBurst: 10_000 }, s.adminToken);
    }
  });

  it('stop when the setting is cleared', async () => {
    await api.put('/v1/gateway/settings', { dataPlane: null }, s.adminToken);
    await eventually(
      async () => {
        try {
          await fetch(`http://127.0.0.1:${port}/gw/${target.fqdn}/`, { signal: AbortSignal.timeout(1000) });
          return false;
        } catch {
          return true;
        }
      },
      8000,
      100,
    );
  });
});
