/**
 * A ring of four Level-2s (A -> B -> C -> D -> A): one registration reaches every gateway and is
 * installed exactly once, along shortest paths, with a bounded number of UPDATE messages; the
 * withdraw converges everywhere with a bounded number of messages; afterwards nothing but
 * keepalives flows (no update loops). Counts come from the per-peer counters of /amsp/v1/routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from '../helpers/api.js';
import { until } from '../helpers/wait.js';
import { enrol, established, startNet, view, type Net } from './net.js';

let net: Net;
const zones = ['a', 'b', 'c', 'd'];

beforeAll(async () => {
  net = await startNet(zones.map((z, i) => ({ zone: `${z}.internal`, role: 'l2' as const, peers: [(i + 1) % 4] })));
  for (const u of net.urls) await established(u, 2, 30_000);
}, 600_000);

afterAll(async () => {
  await net?.stop();
});

/** UPDATE and WITHDRAW messages received so far, summed over every gateway and peer. */
async function totals(): Promise<{ updates: number; withdraws: number }> {
  let updates = 0;
  let withdraws = 0;
  for (const u of net.urls)
    for (const p of (await view(u)).peers) {
      updates += p.updatesIn;
      withdraws += p.withdrawsIn;
    }
  return { updates, withdraws };
}

/** Waits until the counters stop moving (two equal reads a second apart). */
async function quiet(): Promise<{ updates: number; withdraws: number }> {
  let last = await totals();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await totals();
    if (now.updates === last.updates && now.withdraws === last.withdraws) return now;
    last = now;
  }
}

describe('AMSP ring of four Level-2s', () => {
  it('installs a registration once everywhere and converges on its withdraw, with bounded messages', async () => {
    const t0 = await quiet();
    const agent = await enrol(net.urls[0]!, net.servers[0]!.adminToken, 'a.internal', 'radio');
    for (const i of [1, 2, 3])
      await until(async () =>
        (await view(net.urls[i]!)).forwarding.some((f) => f.id === agent.id) ? true : undefined,
      );
    const t1 = await quiet();
    for (const i of [1, 2, 3]) {
      const v = await view(net.urls[i]!);
      const mine = v.forwarding.filter((f) => f.id === agent.id);
      expect(mine.length).toBe(1);
      expect(mine[0]!.path.at(-1)).toBe(net.urls[0]);
      expect(mine[0]!.path.length).toBe(i === 2 ? 2 : 1); // C is two hops away, B and D one
    }
    // Each of B, C, D heard of it at least once; four links carry at most six UPDATEs.
    expect(t1.updates - t0.updates).toBeGreaterThanOrEqual(3);
    expect(t1.updates - t0.updates).toBeLessThanOrEqual(6);
    expect(t1.withdraws - t0.withdraws).toBeLessThanOrEqual(1);

    expect((await client(net.urls[0]!).del(`/v1/agents/${agent.id}`, net.servers[0]!.adminToken)).status).toBeLessThan(
      300,
    );
    for (const i of [1, 2, 3])
      await until(async () => {
        const v = await view(net.urls[i]!);
        return v.forwarding.some((f) => f.id === agent.id) || v.inapplicable.some((r) => r.id === agent.id)
          ? undefined
          : true;
      });
    const t2 = await quiet();
    expect(t2.withdraws - t1.withdraws).toBeGreaterThanOrEqual(3);
    expect(t2.withdraws - t1.withdraws + (t2.updates - t1.updates)).toBeLessThanOrEqual(10);
    for (const u of net.urls) expect((await view(u)).forwarding.some((f) => f.id === agent.id)).toBe(false);
  }, 240_000);
});
