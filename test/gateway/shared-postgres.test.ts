/**
 * Two `ans serve` on one PostgreSQL: a call held for approval on A is listed by
 * `ans admin approvals` on B, and approving (or denying) it on B releases it on A; `GET /v1/graph`
 * on either process counts the calls made through both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';
import { runCli, startServer, type RunningServer } from '../helpers/server.js';
import { enrol, eventually, sendToSkill, upstream, type TestAgent, type Upstream } from './helpers.js';

let a: RunningServer | undefined;
let b: RunningServer | undefined;
let up: Upstream | undefined;
let caller: TestAgent;
let door: TestAgent;
let token = '';
let hasPg = false;

beforeAll(async () => {
  hasPg = await pgAvailable();
  if (!hasPg) return;
  const env = { DATABASE_URL: await freshSchemaUrl(), ANS_CA_PASSPHRASE: 'shared-gateway-passphrase' };
  a = await startServer({ env });
  b = await startServer({ env });
  up = await upstream((_req, res, body) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echoed: body.length })),
  );
  caller = await enrol(a.url, a.adminToken, 'caller', {
    endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
  });
  door = await enrol(a.url, a.adminToken, 'door', {
    skills: [
      { id: 'unlock', name: 'Unlock the door', description: 'Unlocks the front door', requireHumanApproval: true },
      { id: 'status', name: 'Door status', description: 'Says whether the door is locked' },
    ],
    endpoints: [{ protocol: 'a2a', url: `${up.url}/a2a` }],
  });
  token = await caller.token();
  // B learns both agents from the change feed.
  await eventually(async () => (await call(b!, 'status')).status === 200, 10_000, 50);
}, 180_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await up?.close();
});

const call = async (s: RunningServer, skillId: string) => {
  const r = await fetch(`${s.url}/gw/${door.fqdn}/a2a`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: sendToSkill(skillId),
  });
  return { status: r.status, body: (await r.json()) as { code?: string } };
};

const cli = (s: RunningServer, ...args: string[]) =>
  runCli(['admin', 'approvals', ...args, '--server', s.url, '--token', a!.adminToken]);

/** The id of the one ticket `ans admin approvals` on `s` lists. */
const listedOn = (s: RunningServer) =>
  eventually(async () => {
    const r = await cli(s);
    return /apv_\w+/.exec(r.stdout)?.[0];
  });

describe('gateways sharing PostgreSQL', () => {
  it('a call held on A is approved with `ans admin approvals approve` on B and forwarded by A', async () => {
    if (!hasPg) return;
    const held = call(a!, 'unlock');
    const id = (await listedOn(b!))!;
    expect((await cli(b!)).stdout).toContain(door.fqdn);
    const r = await cli(b!, 'approve', id);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`approved ${id}`);
    expect(await held).toMatchObject({ status: 200 });
    expect((await cli(a!)).stdout).not.toContain(id);
    // Decided: neither process takes a second verdict.
    expect((await cli(a!, 'deny', id)).code).not.toBe(0);
  });

  it('a call held on B is denied on A: 403 to the caller', async () => {
    if (!hasPg) return;
    const held = call(b!, 'unlock');
    const id = (await listedOn(a!))!;
    expect((await cli(a!, 'deny', id)).code).toBe(0);
    expect(await held).toMatchObject({ status: 403, body: { code: 'GW_ERR_APPROVAL_DENIED' } });
  });

  it('GET /v1/graph on either process counts the calls through both', async () => {
    if (!hasPg) return;
    // A caller of its own, so the edge counts only the calls below.
    const grapher = await enrol(a!.url, a!.adminToken, 'grapher', {
      endpoints: [{ protocol: 'http', url: 'http://127.0.0.1:9/' }],
    });
    const auth = { authorization: `Bearer ${await grapher.token()}` };
    // B knows the new caller once it stops answering 401 (a call to another target).
    await eventually(async () => (await fetch(`${b!.url}/gw/${caller.fqdn}/`, { headers: auth })).status !== 401);
    for (const s of [a!, a!, b!])
      expect((await fetch(`${s.url}/gw/${door.fqdn}/a2a`, { method: 'POST', headers: auth, body: '{}' })).status).toBe(
        200,
      );
    const calls = async (s: RunningServer) => {
      const g = await client(s.url).get<{ edges: { caller: string; target: string; calls: number }[] }>(
        '/v1/graph',
        a!.adminToken,
      );
      return g.body.edges.find((e) => e.caller === grapher.fqdn && e.target === door.fqdn)?.calls;
    };
    // Each process adds its counts to the store every second.
    expect(await eventually(async () => (await calls(a!)) === 3 && (await calls(b!)) === 3)).toBe(true);
  });
});
