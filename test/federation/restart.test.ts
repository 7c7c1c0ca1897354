/**
 * `kill -9` and restart with real processes: A (Level-2) dials B (Level-2). Routes learned from
 * a killed gateway go inapplicable after the hold time; when it is back (same port, same data
 * dir, a new boot id) the full table comes again and every route is there exactly once, with no
 * inapplicable leftovers and one session per peer. Then the same with the receiving side killed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/wait.js';
import { enrol, established, startNet, view, type Net } from './net.js';

const A = 0;
const B = 1;
let net: Net;
const atA: string[] = [];
let atB = '';

beforeAll(async () => {
  net = await startNet([
    { zone: 'alpha.internal', role: 'l2', peers: [B] },
    { zone: 'beta.internal', role: 'l2', peers: [] },
  ]);
  await established(net.urls[A]!, 1);
  for (const label of ['one', 'two'])
    atA.push((await enrol(net.urls[A]!, net.servers[A]!.adminToken, 'alpha.internal', label)).id);
  atB = (await enrol(net.urls[B]!, net.servers[B]!.adminToken, 'beta.internal', 'three')).id;
}, 600_000);

afterAll(async () => {
  await net?.stop();
});

const ids = async (i: number) => (await view(net.urls[i]!)).forwarding.map((f) => f.id).sort();
const once = (list: string[], want: string[]) => want.every((id) => list.filter((x) => x === id).length === 1);

describe('kill -9 and restart', () => {
  it('brings the routes of a killed origin back exactly once', async () => {
    await until(async () => (once(await ids(B), atA) ? true : undefined));
    await until(async () => (once(await ids(A), [atB]) ? true : undefined));
    net.servers[A]!.proc.kill('SIGKILL');
    await until(async () => {
      const v = await view(net.urls[B]!);
      return v.forwarding.length === 0 && v.inapplicable.length === 2 ? true : undefined;
    }, 15_000);
    await net.restart(A);
    await until(async () => {
      const v = await view(net.urls[B]!);
      return v.inapplicable.length === 0 &&
        once(
          v.forwarding.map((f) => f.id),
          atA,
        )
        ? true
        : undefined;
    }, 30_000);
    const vb = await view(net.urls[B]!);
    expect(vb.forwarding.map((f) => f.id).sort()).toEqual([...atA].sort());
    expect(vb.peers.filter((p) => p.uri === net.urls[A]).length).toBe(1);
    // And the restarted gateway relearned B's agent, once.
    await until(async () => (once(await ids(A), [atB]) ? true : undefined), 30_000);
    const va = await view(net.urls[A]!);
    expect(va.forwarding.map((f) => f.id)).toEqual([atB]);
    expect(va.local.map((l) => l.id).sort()).toEqual([...atA].sort());
  }, 240_000);

  it('lets a killed receiver relearn everything exactly once', async () => {
    net.servers[B]!.proc.kill('SIGKILL');
    await until(async () => {
      const v = await view(net.urls[A]!);
      return v.forwarding.length === 0 && v.inapplicable.length === 1 ? true : undefined;
    }, 15_000);
    await net.restart(B);
    await until(async () => (once(await ids(B), atA) ? true : undefined), 30_000);
    await until(async () => {
      const v = await view(net.urls[A]!);
      return v.inapplicable.length === 0 &&
        once(
          v.forwarding.map((f) => f.id),
          [atB],
        )
        ? true
        : undefined;
    }, 30_000);
    expect(await ids(B)).toEqual([...atA].sort());
    expect(await ids(A)).toEqual([atB]);
    expect((await view(net.urls[A]!)).peers.filter((p) => p.uri === net.urls[B]).length).toBe(1);
  }, 240_000);
});
