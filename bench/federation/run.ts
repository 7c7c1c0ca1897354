/**
 * bench/federation: N real `ans serve` processes peered with AMSP — two Level-2s (peering each
 * other) and four Level-1s (two under each Level-2) — with AGENTS agents spread over them.
 * Every card carries the word "fleet" and each Level-1 resolves it, so its `text:fleet`
 * subscription pulls every record (the hybrid model's "everything" for a Level-1).
 *
 * Figures (one JSON line each), with the load average printed at start and end:
 * - federation.cold_full_sync: after stopping and restarting all six at once, time until every
 *   gateway's forwarding table holds every remote agent (from the restart, and from "all up");
 * - federation.change_propagation p50/p99: one new agent (register + approve at a Level-1) until
 *   the other five gateways route it (probed with an unauthenticated `/gw/<fqdn>/` call: 401 once
 *   the name is in the forwarding table, 404 before);
 * - federation.messages_per_change / bytes_per_change: UPDATE messages and envelope bytes received
 *   over all sessions, per change;
 * - federation.rss: memory of each gateway holding the full table.
 *
 *   npx tsx bench/federation/run.ts [--agents 10000] [--changes 30] [--concurrency 8]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { createKeyAndCsr } from '../../src/client/index.js';
import { card } from '../../test/helpers/api.js';
import { freePort } from '../../test/helpers/ports.js';
import { startServer, tempDir, type RunningServer } from '../../test/helpers/server.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    changes: { type: 'string', default: '30' },
    concurrency: { type: 'string', default: '8' },
    /** Stop registering after this many seconds (a loaded machine); the count reached is reported. */
    'register-budget-s': { type: 'string', default: '600' },
  },
});
const AGENTS = Number(values.agents);
const CHANGES = Number(values.changes);
const CONC = Number(values.concurrency);

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
function emit(bench: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  process.stdout.write(`${JSON.stringify({ bench, value: Math.round(value * 100) / 100, unit, ...extra })}\n`);
}
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface NodeSpec {
  zone: string;
  role: 'l1' | 'l2';
  peers: number[];
}
const NODES: NodeSpec[] = [
  { zone: 'l2a.internal', role: 'l2', peers: [1] },
  { zone: 'l2b.internal', role: 'l2', peers: [] },
  { zone: 'h1.internal', role: 'l1', peers: [0] },
  { zone: 'h2.internal', role: 'l1', peers: [0] },
  { zone: 'h3.internal', role: 'l1', peers: [1] },
  { zone: 'h4.internal', role: 'l1', peers: [1] },
];

interface View {
  forwarding: unknown[];
  peers: { updatesIn: number; withdrawsIn: number; bytesIn: number; messagesIn: number }[];
}

const dir = tempDir('ans-fedbench-');
const cas = NODES.map((n) => join(dir, `${n.zone}.pem`));
const ports: number[] = [];
for (let i = 0; i < NODES.length; i++) ports.push(await freePort());
const urls = ports.map((p) => `http://127.0.0.1:${p}`);
const dataDirs = NODES.map(() => tempDir('ans-fedbench-node-'));
const args = (i: number) => [
  '--zone',
  `${NODES[i]!.zone}.`,
  '--role',
  NODES[i]!.role,
  ...NODES[i]!.peers.flatMap((p) => ['--peer', urls[p]!]),
  ...cas.flatMap((f) => ['--peer-ca', f]),
  '--http-port',
  String(ports[i]),
  '--register-rate',
  '1000000',
  '--resolve-rate',
  '1000000',
  // Re-dial back-off is capped at the keepalive (10 s); a 6 s hold time flapped sessions during
  // full-table syncs on this loaded machine, so 30 s.
  '--hold-time',
  '30',
  '--keepalive',
  '10',
];
const servers: RunningServer[] = [];
const pools = urls.map((u) => new Pool(u, { connections: CONC }));

async function req(i: number, method: string, path: string, body?: unknown, bearer?: string) {
  const r = await pools[i]!.request({
    method: method as 'GET',
    path,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.body.text();
  return { status: r.statusCode, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const view = async (i: number) => (await req(i, 'GET', '/amsp/v1/routes')).body as unknown as View;
const subscribeAll = () => Promise.all([2, 3, 4, 5].map((i) => req(i, 'GET', '/v1/resolve?q=fleet&k=1')));

async function register(i: number, label: string, csr: string): Promise<string> {
  const c = card(label, { description: `The ${label} agent of the fleet answers questions about ${label}.` });
  const r = await req(i, 'POST', '/v1/agents', { card: c, csr });
  if (r.status !== 202) throw new Error(`register ${label} at ${i}: ${r.status} ${JSON.stringify(r.body)}`);
  const a = await req(i, 'POST', `/v1/agents/${String(r.body['id'])}/approve`, {}, servers[i]!.adminToken);
  if (a.status !== 200) throw new Error(`approve ${label}: ${a.status}`);
  return String(r.body['id']);
}

/** Waits until every gateway routes every remote agent; returns when (throws after `maxMs`). */
async function converged(total: number[], maxMs = 300_000): Promise<number> {
  const sum = total.reduce((a, b) => a + b, 0);
  const start = performance.now();
  let asked = 0;
  for (;;) {
    if (performance.now() - start > maxMs) {
      const have = await Promise.all(
        NODES.map((_n, i) =>
          view(i).then(
            (v) => v.forwarding.length,
            () => -1,
          ),
        ),
      );
      throw new Error(
        `no full tables after ${maxMs / 1000} s: routes ${have.join(', ')} of ${total.map((t) => sum - t).join(', ')}`,
      );
    }
    // The Level-1s are in use: their subscription would expire after five hold times.
    if (performance.now() - asked > 10_000) {
      asked = performance.now();
      await subscribeAll().catch(() => undefined);
    }
    let ok = true;
    for (let i = 0; i < NODES.length && ok; i++) {
      const v = await view(i).catch(() => undefined);
      if (!v || v.forwarding.length < sum - total[i]!) ok = false;
    }
    if (ok) return performance.now();
    await sleep(250);
  }
}

async function totals() {
  let updates = 0;
  let withdraws = 0;
  let bytes = 0;
  for (let i = 0; i < NODES.length; i++)
    for (const p of (await view(i)).peers) {
      updates += p.updatesIn;
      withdraws += p.withdrawsIn;
      bytes += p.bytesIn;
    }
  return { updates, withdraws, bytes };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

log(`load average at start: ${load()}`);
try {
  log(`making ${AGENTS + CHANGES} key pairs and CSRs`);
  const items: { node: number; label: string; csr: string }[] = [];
  for (let k = 0; k < AGENTS + CHANGES; k++) {
    const node = k < AGENTS ? k % NODES.length : 2 + (k % 4);
    const label = `a${k}`;
    items.push({ node, label, csr: (await createKeyAndCsr(`${label}.${NODES[node]!.zone}`)).csrPem });
  }

  for (let i = 0; i < NODES.length; i++) {
    servers.push(await startServer({ dataDir: dataDirs[i]!, args: args(i) }));
    const pem = await (await fetch(`${urls[i]}/v1/ca/certificate`)).text();
    writeFileSync(cas[i]!, `${pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!.at(-1)!}\n`);
  }
  log('six gateways up; registering');
  await subscribeAll();
  const perNode = NODES.map(() => 0);
  let next = 0;
  const t0 = performance.now();
  const budgetMs = Number(values['register-budget-s']) * 1000;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < AGENTS && performance.now() - t0 < budgetMs) {
        const k = next++;
        const it = items[k]!;
        try {
          await register(it.node, it.label, it.csr);
          perNode[it.node]!++;
        } catch (e) {
          log(`registration failed: ${(e as Error).message.slice(0, 200)}`);
        }
        if ((k + 1) % 1000 === 0) log(`${k + 1} registered`);
      }
    }),
  );
  const registered = perNode.reduce((a, b) => a + b, 0);
  const regS = (performance.now() - t0) / 1000;
  log(`registered ${registered} in ${regS.toFixed(1)} s; waiting for the full tables`);
  emit('federation.registered', registered, 'agents', {
    seconds: Math.round(regS),
    perSecond: Math.round(registered / regS),
  });
  await converged(perNode);
  log('warm tables complete');

  // Cold full sync: stop all six; start the four Level-1s and one Level-2 again (they re-sync
  // what they can among themselves), then the other Level-2, and time from its "up" until every
  // gateway routes every agent: the bulk of the table crosses every link in that window. (Booting
  // six processes at once on this shared 2-core machine takes minutes and would measure boot.)
  await Promise.all(servers.map((s) => s.stop()));
  for (const i of [1, 2, 3, 4, 5]) servers[i] = await startServer({ dataDir: dataDirs[i]!, args: args(i) });
  await subscribeAll();
  servers[0] = await startServer({ dataDir: dataDirs[0]!, args: args(0) });
  const up = performance.now();
  const done = await converged(perNode);
  emit('federation.cold_full_sync', (done - up) / 1000, 's', {
    agents: registered,
    gateways: NODES.length,
    from: 'the last Level-2 up (others restarted before it)',
  });
  for (let i = 0; i < NODES.length; i++)
    emit('federation.rss', rssMb(servers[i]!.proc.pid!), 'MB', { gateway: NODES[i]!.zone, role: NODES[i]!.role });

  // One change at a time: a new agent at a Level-1, until the five others route it.
  await subscribeAll();
  const before = await totals();
  const delays: number[] = [];
  for (let c = 0; c < CHANGES; c++) {
    if (c % 5 === 0) await subscribeAll();
    const it = items[AGENTS + c]!;
    const fqdn = `${it.label}.${NODES[it.node]!.zone}`;
    await register(it.node, it.label, it.csr);
    const ta = performance.now();
    const others = NODES.map((_n, i) => i).filter((i) => i !== it.node);
    await Promise.all(
      others.map(async (i) => {
        for (;;) {
          const r = await req(i, 'GET', `/gw/${fqdn}/`);
          if (r.status === 401) return;
          await sleep(5);
        }
      }),
    );
    delays.push(performance.now() - ta);
    await sleep(200);
  }
  await sleep(1000);
  const after = await totals();
  emit('federation.change_propagation_p50', pct(delays, 50), 'ms', { changes: CHANGES, to: 5 });
  emit('federation.change_propagation_p99', pct(delays, 99), 'ms', { changes: CHANGES, to: 5 });
  emit('federation.messages_per_change', (after.updates - before.updates) / CHANGES, 'UPDATEs', {
    note: 'over all sessions, keepalives not counted',
  });
  emit('federation.bytes_per_change', (after.bytes - before.bytes) / CHANGES, 'bytes', {
    note: 'envelope bytes received over all sessions in the window, keepalives included',
  });
} finally {
  for (const p of pools) await p.close();
  await Promise.all(servers.map((s) => s.stop()));
  log(`load average at end: ${load()}`);
}
