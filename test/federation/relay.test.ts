/**
 * 003 section 4.6 end to end with three real `ans serve` processes and a real upstream:
 * Agent1 -> GW1 (home, Level-1) -> GW3 (transit, Level-2) -> GW2 (office, Level-2) -> Agent2.
 * GW1 learns Agent2 on demand (a resolve subscribes at GW3), forwards the call to its next hop,
 * GW3 forwards again, GW2 delivers. Each hop authenticates with the relay credentials of
 * docs/amsp.md section 8; the origin applies its policy to its caller, the owner its own.
 */
import { readFileSync } from 'node:fs';
import { createHash, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { runCli } from '../helpers/server.js';
import { until } from '../helpers/wait.js';
import { upstream, type Upstream } from '../gateway/helpers.js';
import { enrol, established, startNet, view, type Enrolled, type Net } from './net.js';

const GW1 = 0;
const GW2 = 1;
const GW3 = 2;
const TARGET = 'weather.office.internal';

let net: Net;
let up: Upstream;
let agent1: Enrolled;
let agent2: Enrolled;
let token: string;
let release: () => void = () => undefined;

interface Echo {
  method: string;
  url: string;
  body: string;
  headers: Record<string, string | undefined>;
}

beforeAll(async () => {
  up = await upstream((req, res, body) => {
    if (req.url?.startsWith('/api/stream')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one\n');
      release = () => res.end('part two\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-agent': 'agent2' });
    res.end(JSON.stringify({ method: req.method, url: req.url, body, headers: req.headers }));
  });
  // Hold timers long enough that a loaded machine does not flap the sessions mid-test.
  net = await startNet(
    [
      { zone: 'home.internal', role: 'l1', peers: [GW3] },
      { zone: 'office.internal', role: 'l2', peers: [] },
      { zone: 'transit.internal', role: 'l2', peers: [GW2] },
    ],
    () => ['--hold-time', '30', '--keepalive', '5'],
  );
  await established(net.urls[GW3]!, 2);
  agent2 = await enrol(net.urls[GW2]!, net.servers[GW2]!.adminToken, 'office.internal', 'weather', {
    description: 'Weather forecasts for the office.',
    endpoints: [{ protocol: 'http', url: `${up.url}/api` }],
  });
  agent1 = await enrol(net.urls[GW1]!, net.servers[GW1]!.adminToken, 'home.internal', 'planner', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/none' }],
  });
  token = await agent1.token();
  // The origin's policy: home's agents may call office's.
  const p = await client(net.urls[GW1]!).post(
    '/v1/policies',
    { caller: '*.home.internal', target: '*.office.internal', effect: 'allow' },
    net.servers[GW1]!.adminToken,
  );
  expect(p.status).toBeLessThan(300);
}, 400_000);

afterAll(async () => {
  release();
  await net?.stop();
  await up?.close();
});

const call = (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
  fetch(`${net.urls[GW1]}/gw/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });

type Graph = { edges: { caller: string; target: string; calls: number; denied: number }[] };
const edge = async (i: number) =>
  (await client(net.urls[i]!).get<Graph>('/v1/graph', net.servers[i]!.adminToken)).body.edges.find(
    (e) => e.caller === agent1.fqdn && e.target === TARGET,
  );

describe('relay forwarding GW1 -> GW3 -> GW2 -> Agent2', () => {
  it('resolves Agent2 at GW1 on demand, via GW3, with GW1 endpoints', async () => {
    type Answer = { results: { id: string; fqdn: string; via: string | null; endpoints: { url: string }[] }[] };
    const hit = await until(async () => {
      const r = await client(net.urls[GW1]!).get<Answer>(
        `/v1/resolve?q=${encodeURIComponent('weather forecasts')}&k=5`,
      );
      return r.body.results.find((x) => x.id === agent2.id);
    }, 15_000);
    expect(hit.via).toBe(net.urls[GW3]);
    expect(hit.endpoints.every((e) => e.url.startsWith(`${net.urls[GW1]}/gw/${TARGET}/`))).toBe(true);
    const f = (await view(net.urls[GW1]!)).forwarding.find((x) => x.id === agent2.id)!;
    expect(f.nextHop).toBe(net.urls[GW3]);
    expect(f.path).toEqual([net.urls[GW3], net.urls[GW2]]);
  });

  it('prints the forwarding table with `ans fed routes`', async () => {
    const r = await runCli(['fed', 'routes', '--server', net.urls[GW1]!, '--peers']);
    expect(r.code).toBe(0);
    const row = r.stdout.split('\n').find((l) => l.startsWith(TARGET))!;
    expect(row).toContain(agent2.id);
    expect(row).toContain(`${net.urls[GW3]} > ${net.urls[GW2]}`);
    expect(r.stdout).toContain('established');
    const j = await runCli(['fed', 'routes', '--server', net.urls[GW1]!, '--json']);
    expect((JSON.parse(j.stdout) as { forwarding: { fqdn: string; nextHop: string }[] }).forwarding).toContainEqual(
      expect.objectContaining({ fqdn: TARGET, nextHop: net.urls[GW3] }),
    );
    const down = await runCli(['fed', 'routes', '--server', 'http://127.0.0.1:9']);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toContain('cannot reach');
  });

  it('is refused by the owning domain until its policy allows the remote caller', async () => {
    const r = await call(`${TARGET}/items/1`);
    expect(r.status).toBe(403);
    const problem = (await r.json()) as { code: string; detail: string };
    expect(problem.code).toBe('GW_ERR_DENIED');
    expect(problem.detail).toContain(agent1.fqdn);
    expect(up.seen.length).toBe(0);
    // The transit gateway relayed it (no agent policy there); the owner denied it.
    await until(async () => ((await edge(GW3))?.denied ? true : undefined));
    await until(async () => ((await edge(GW2))?.denied ? true : undefined));
  });

  it('delivers through both hops: method, path, query, body, caller identity and ANS-Via', async () => {
    const p = await client(net.urls[GW2]!).post(
      '/v1/policies',
      { caller: '*.home.internal', target: TARGET, effect: 'allow' },
      net.servers[GW2]!.adminToken,
    );
    expect(p.status).toBeLessThan(300);
    const r = await until(async () => {
      const x = await call(`${TARGET}/items/1?q=a%20b`, {
        method: 'POST',
        body: 'hello',
        headers: {
          'content-type': 'text/plain',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        },
      });
      return x.status === 200 ? x : (await x.arrayBuffer(), undefined);
    });
    expect(r.headers.get('x-agent')).toBe('agent2');
    const j = (await r.json()) as Echo;
    expect(j.method).toBe('POST');
    expect(j.url).toBe('/api/items/1?q=a%20b');
    expect(j.body).toBe('hello');
    expect(j.headers['traceparent']).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(j.headers['ans-caller']).toBe(agent1.fqdn);
    expect(j.headers['ans-caller-id']).toBe(agent1.id);
    expect(j.headers['ans-via']).toBe([net.urls[GW1], net.urls[GW3], net.urls[GW2]].join(', '));
    expect(j.headers['authorization']).toBeUndefined();
    expect(j.headers['amsp-hop']).toBeUndefined();
    expect(j.headers['amsp-caller']).toBeUndefined();
    // Every gateway on the way accounted the call to the original caller.
    for (const i of [GW1, GW3, GW2]) await until(async () => ((await edge(i))?.calls ?? 0) >= 2 || undefined);
    const stats = async (i: number) => (await view(net.urls[i]!)).stats;
    expect((await stats(GW1)).relayedOut).toBeGreaterThanOrEqual(2);
    expect((await stats(GW3)).relayedIn).toBeGreaterThanOrEqual(2);
    expect((await stats(GW3)).relayedOut).toBeGreaterThanOrEqual(2);
    expect((await stats(GW2)).relayedIn).toBeGreaterThanOrEqual(2);
  });

  it('streams the answer through the hops (first part arrives before the agent finishes)', async () => {
    const r = await call(`${TARGET}/stream`);
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe('part one\n');
    release();
    let rest = '';
    for (;;) {
      const c = await reader.read();
      if (c.done) break;
      rest += Buffer.from(c.value).toString();
    }
    expect(rest).toBe('part two\n');
  });

  it('passes ANS-Protocol on and refuses a protocol the agent does not speak at the origin', async () => {
    const ok = await call(`${TARGET}/p`, { headers: { 'ans-protocol': 'http' } });
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    const r = await call(`${TARGET}/p`, { headers: { 'ans-protocol': 'mcp' } });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { code: string }).code).toBe('GW_ERR_NO_ENDPOINT');
  });

  it('refuses relay credentials from a gateway that is not an established peer', async () => {
    // GW1 holds a trusted certificate, but it has no session with GW2: a hop it signs is refused.
    const saved = JSON.parse(readFileSync(join(net.servers[GW1]!.dataDir, 'amsp-gateway.json'), 'utf8')) as {
      keyPem: string;
    };
    const key = createPrivateKey(saved.keyPem);
    const now = Math.floor(Date.now() / 1000);
    const sign = (p: object) =>
      new CompactSign(new TextEncoder().encode(JSON.stringify(p))).setProtectedHeader({ alg: 'ES256' }).sign(key);
    const assertion = 'x.y.z';
    const cth = createHash('sha256').update(assertion).digest('base64url');
    const hop = (aud: string, via: string[]) =>
      sign({ iss: net.urls[GW1], aud, sid: 'x', via, cth, iat: now, exp: now + 60 });
    const direct = await fetch(`${net.urls[GW2]}/gw/${TARGET}/x`, {
      headers: { 'amsp-hop': await hop(net.urls[GW2]!, [net.urls[GW1]!]), 'amsp-caller': assertion },
    });
    expect(direct.status).toBe(401);
    expect(((await direct.json()) as { code: string }).code).toBe('FED_ERR_BAD_RELAY');
    // Garbage is a 401 too, never a 500.
    const junk = await fetch(`${net.urls[GW2]}/gw/${TARGET}/x`, {
      headers: { 'amsp-hop': 'junk', 'amsp-caller': 'junk' },
    });
    expect(junk.status).toBe(401);
    // A hop whose via already holds the receiver is a loop: 508, counted.
    const before = (await view(net.urls[GW3]!)).stats.relayLoops ?? 0;
    const loop = await fetch(`${net.urls[GW3]}/gw/${TARGET}/x`, {
      headers: { 'amsp-hop': await hop(net.urls[GW3]!, [net.urls[GW3]!, net.urls[GW1]!]), 'amsp-caller': assertion },
    });
    expect(loop.status).toBe(508);
    expect(((await loop.json()) as { code: string }).code).toBe('FED_ERR_RELAY_LOOP');
    expect((await view(net.urls[GW3]!)).stats.relayLoops).toBe(before + 1);
    expect(up.seen.some((s) => s.url === '/api/x')).toBe(false);
  });

  it('answers 404 for a remote name that is in no forwarding table', async () => {
    const r = await call('nobody.office.internal/x');
    expect(r.status).toBe(404);
    await r.arrayBuffer();
  });
});
