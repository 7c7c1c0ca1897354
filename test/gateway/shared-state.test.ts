/**
 * Approval tickets and the call graph live in the store (migration 006): two gateways on one
 * store (two `Approvals` / `CallGraph` instances, as two processes would have) see each other's
 * tickets and counts. On PGlite and PostgreSQL.
 */
import { EventEmitter } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChangeFeed, currentSeq } from '../../src/events/index.js';
import { Approvals, CallGraph, type Verdict } from '../../src/gateway/index.js';
import { openStore, type Db } from '../../src/store/index.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';

const backends: [string, () => Promise<Db>][] = [
  ['pglite', () => openStore({})],
  ['postgres', async () => openStore({ databaseUrl: await freshSchemaUrl() })],
];

const call = { caller: 'a.agents.internal', callerId: 'id-a', target: 'door.agents.internal', skill: 'unlock' };
const ticket = { ...call, method: 'POST', path: '/a2a' };

describe.each(backends)('shared gateway state on %s', (name, open) => {
  let db: Db | undefined;
  let skip = false;
  const feeds: ChangeFeed[] = [];
  const graphs: CallGraph[] = [];
  beforeAll(async () => {
    skip = name === 'postgres' && !(await pgAvailable());
    if (!skip) db = await open();
  }, 60_000);
  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.stop();
    for (const g of graphs.splice(0)) await g.close();
  });
  afterAll(async () => {
    await db?.close();
  });

  /** A gateway's Approvals, released by the change feed as in index.ts. */
  const gateway = async (d: Db, timeoutMs = 60_000) => {
    const a = new Approvals(d, () => ({ approvalTimeoutMs: timeoutMs, maxPendingApprovals: 10 }));
    const feed = new ChangeFeed(d);
    feed.subscribe(async (c) => {
      if (c.entity === 'approval') await a.changed(c.entityId);
    });
    await feed.start(await currentSeq(d), 50);
    feeds.push(feed);
    return a;
  };

  it('a ticket held by one gateway is listed and decided by another, which releases the call', async () => {
    if (skip || !db) return;
    const [a, b] = [await gateway(db), await gateway(db)];
    const held = await a.hold(ticket);
    expect(a.pending).toBe(1);
    expect(b.pending).toBe(0);
    expect(await b.list()).toEqual([held.ticket]);
    const audited: string[] = [];
    expect(await b.decide(held.ticket.id, 'approved', 'admin:ops', async (_tx, t) => void audited.push(t.id))).toBe(
      true,
    );
    expect(audited).toEqual([held.ticket.id]);
    expect(await held.verdict).toBe('approved');
    expect(a.pending).toBe(0);
    expect(await a.list()).toEqual([]);
    // Decided once: a second decision (either process, either verdict) finds no ticket waiting.
    expect(await a.decide(held.ticket.id, 'denied', 'admin:ops')).toBe(false);
    expect(await b.decide(held.ticket.id, 'approved', 'admin:ops')).toBe(false);
  });

  it('of two verdicts racing on two gateways exactly one wins, and the call gets that one', async () => {
    if (skip || !db) return;
    const [a, b] = [await gateway(db), await gateway(db)];
    const held = await a.hold(ticket);
    const wins = await Promise.all([
      a.decide(held.ticket.id, 'denied', 'admin:one'),
      b.decide(held.ticket.id, 'approved', 'admin:two'),
    ]);
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await held.verdict).toBe(wins[0] ? 'denied' : 'approved');
  });

  it('an undecided ticket times out (then nobody can decide it); a caller that leaves cancels its ticket', async () => {
    if (skip || !db) return;
    const a = await gateway(db, 150);
    const b = await gateway(db);
    const held = await a.hold(ticket);
    expect(await held.verdict).toBe<Verdict>('timeout');
    expect(await b.list()).toEqual([]);
    expect(await b.decide(held.ticket.id, 'approved', 'admin:late')).toBe(false);

    const conn = Object.assign(new EventEmitter(), { destroyed: false });
    const kept = await b.hold(ticket, conn);
    expect((await a.list()).map((t) => t.id)).toEqual([kept.ticket.id]);
    conn.destroyed = true;
    conn.emit('close');
    expect(await kept.verdict).toBe<Verdict>('cancelled');
    expect(await a.list()).toEqual([]);
  });

  it("the graph adds up every gateway's calls per edge", async () => {
    if (skip || !db) return;
    const g1 = new CallGraph(db);
    const g2 = new CallGraph(db);
    graphs.push(g1, g2);
    g1.note('a', 'b', 200, 2, 1000);
    g1.note('a', 'b', 503, 4, 2000);
    g2.note('a', 'b', 403, 0, 3000);
    g2.note('c', 'b', 200, 1, 1500);
    await g1.flush(); // its timer does this every second
    const s = await g2.snapshot();
    expect(s.since).toBe(new Date(1000).toISOString());
    expect(s.nodes).toEqual(['a', 'b', 'c']);
    expect(s.edges).toEqual([
      {
        caller: 'a',
        target: 'b',
        calls: 3,
        errors: 1,
        denied: 1,
        errorRate: 0.3333,
        meanMs: 2,
        lastAt: new Date(3000).toISOString(),
      },
      {
        caller: 'c',
        target: 'b',
        calls: 1,
        errors: 0,
        denied: 0,
        errorRate: 0,
        meanMs: 1,
        lastAt: new Date(1500).toISOString(),
      },
    ]);
    g1.note('a', 'b', 200, 2, 4000);
    expect((await g1.snapshot()).edges[0]).toMatchObject({ calls: 4, lastAt: new Date(4000).toISOString() });
  });
});
