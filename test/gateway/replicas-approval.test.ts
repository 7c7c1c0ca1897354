/** Replicas (balancing, passive ejection, consistent hashing) and human approval, end to end. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { enrol, eventually, sendToSkill, sleep, upstream, type TestAgent, type Upstream } from './helpers.js';

let s: RunningServer;
let api: ReturnType<typeof client>;
let caller: TestAgent;
let token: string;
let reps: Upstream[];
let multi: TestAgent;
let door: TestAgent;
let doorUp: Upstream;
let vault: TestAgent;

const answer = (name: string) => (_req: unknown, res: import('node:http').ServerResponse) =>
  res.writeHead(200, { 'content-type': 'text/plain' }).end(name);

beforeAll(async () => {
  s = await startServer();
  api = client(s.url);
  await api.put(
    '/v1/gateway/settings',
    { maxFailures: 2, ejectMs: 1500, maxEjectMs: 3000, approvalTimeoutMs: 800 },
    s.adminToken,
  );
  reps = await Promise.all(['r0', 'r1', 'r2'].map((n) => upstream(answer(n))));
  caller = await enrol(s.url, s.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  token = await caller.token();
  multi = await enrol(s.url, s.adminToken, 'multi', {
    endpoints: reps.map((r) => ({ protocol: 'http' as const, url: `${r.url}/svc` })),
  });
  doorUp = await upstream((_req, res, body) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { echoed: JSON.parse(body || '{}') } })),
  );
  door = await enrol(s.url, s.adminToken, 'door', {
    skills: [
      { id: 'unlock', name: 'Unlock the door', description: 'Unlocks the front door', requireHumanApproval: true },
      { id: 'status', name: 'Door status', description: 'Says whether the door is locked' },
    ],
    endpoints: [{ protocol: 'a2a', url: `${doorUp.url}/a2a` }],
  });
  vault = await enrol(s.url, s.adminToken, 'vault', {
    skills: [{ id: 'open', name: 'Open', description: 'Opens the vault', requireHumanApproval: true }],
    endpoints: [{ protocol: 'http', url: `${doorUp.url}/vault` }],
  });
});
afterAll(async () => {
  await s?.stop();
  await Promise.all([...(reps ?? []), doorUp].map((u) => u?.close()));
});

const call = async (fqdn: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) => {
  const r = await fetch(`${s.url}/gw/${fqdn}/x`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...init.headers },
    ...(init.body ? { body: init.body } : {}),
  });
  return { status: r.status, text: await r.text() };
};

describe('replicas', () => {
  it('round-robin spreads calls over every replica', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await call(multi.fqdn);
      seen.set(r.text, (seen.get(r.text) ?? 0) + 1);
    }
    expect(seen).toEqual(
      new Map([
        ['r0', 10],
        ['r1', 10],
        ['r2', 10],
      ]),
    );
  });

  it('a dead replica is retried around (GET), ejected, and taken back once it returns', async () => {
    const dead = reps[1]!;
    const port = dead.port;
    await dead.close();
    for (let i = 0; i < 12; i++) {
      const r = await call(multi.fqdn);
      expect(r.status).toBe(200);
      expect(r.text).not.toBe('r1');
    }
    const m = await api.get<string>('/metrics');
    expect(String(m.body)).toMatch(/ans_gateway_ejections_total\{target="multi\.agents\.internal"\} [1-9]/);
    // back on the same port
    const { createServer } = await import('node:http');
    const again = createServer((_q, res) => res.end('r1'));
    await new Promise<void>((r) => again.listen(port, '127.0.0.1', r));
    const back = await eventually(async () => (await call(multi.fqdn)).text === 'r1', 5000, 50);
    expect(back).toBe(true);
    await new Promise<void>((r) => again.close(() => r()));
  });

  it('a POST is not retried on another replica once it may have been sent', async () => {
    // reset-before-answer on every replica would 502; a refused connection is safe to retry
    const r = await call(multi.fqdn, { method: 'POST', body: 'x' });
    expect([200, 503]).toContain(r.status);
  });

  it('consistent hashing keeps a session on one replica', async () => {
    await api.put('/v1/gateway/settings', { agents: { [multi.fqdn]: { balancer: 'consistent-hash' } } }, s.adminToken);
    await sleep(100);
    for (const sid of ['s-1', 's-2', 's-3', 's-4']) {
      const first = (await call(multi.fqdn, { headers: { 'mcp-session-id': sid } })).text;
      for (let i = 0; i < 5; i++)
        expect((await call(multi.fqdn, { headers: { 'mcp-session-id': sid } })).text).toBe(first);
    }
  });
});

describe('human approval', () => {
  const rpc = sendToSkill;
  const held = async () => {
    const t = await eventually(async () => {
      const r = await api.get<{ items: { id: string; skill: string; caller: string; target: string }[] }>(
        '/v1/approvals',
        s.adminToken,
      );
      return r.body.items[0];
    });
    return t;
  };

  it('a skill without approval goes straight through', async () => {
    const r = await call(door.fqdn, {
      method: 'POST',
      body: rpc('status'),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(200);
  });

  it('approve -> forwarded (the body unchanged)', async () => {
    const p = call(door.fqdn, { method: 'POST', body: rpc('unlock'), headers: { 'content-type': 'application/json' } });
    const t = await held();
    expect(t).toMatchObject({ skill: 'unlock', caller: caller.fqdn, target: door.fqdn });
    expect((await api.post(`/v1/approvals/${t.id}/approve`, {}, s.adminToken)).status).toBe(200);
    const r = await p;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).result.echoed.params.metadata.skillId).toBe('unlock');
  });

  it('deny -> 403', async () => {
    const p = call(door.fqdn, { method: 'POST', body: rpc('unlock'), headers: { 'content-type': 'application/json' } });
    const t = await held();
    await api.post(`/v1/approvals/${t.id}/deny`, {}, s.adminToken);
    const r = await p;
    expect(r.status).toBe(403);
    expect(JSON.parse(r.text).code).toBe('GW_ERR_APPROVAL_DENIED');
    expect((await api.post(`/v1/approvals/${t.id}/approve`, {}, s.adminToken)).status).toBe(404);
  });

  it('no decision -> 504 after the approval timeout', async () => {
    const r = await call(door.fqdn, {
      method: 'POST',
      body: rpc('unlock'),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(504);
    expect(JSON.parse(r.text).code).toBe('GW_ERR_APPROVAL_TIMEOUT');
    expect((await api.get<{ items: unknown[] }>('/v1/approvals', s.adminToken)).body.items).toEqual([]);
  });

  it('an agent whose every skill needs approval has every call held', async () => {
    const p = call(vault.fqdn);
    const t = await held();
    expect(t.target).toBe(vault.fqdn);
    await api.post(`/v1/approvals/${t.id}/approve`, {}, s.adminToken);
    expect((await p).status).toBe(200);
  });
});
