import { describe, expect, it } from 'vitest';
import { Rib, type Route } from '../../src/federation/rib.js';
import { searchRoutes } from '../../src/federation/search.js';
import { rec } from './fixtures.js';

const P = 'http://p.example';
const Q = 'http://q.example';
const O = 'http://gw2.example';
const route = (peer: string, path: string[], over: Parameters<typeof rec>[0] = {}): Route => ({
  peer,
  path,
  record: rec(over),
  jws: `jws-${peer}-${path.length}`,
  state: 'active',
});

describe('RIB', () => {
  it('keeps routes per peer and picks the shortest PATH', () => {
    const rib = new Rib();
    expect(rib.install(route(P, [P, 'http://x.example', O]))?.after?.peer).toBe(P);
    const c = rib.install(route(Q, [Q, O]));
    expect(c?.before?.peer).toBe(P);
    expect(c?.after?.peer).toBe(Q);
    expect(rib.routesOf('a1')).toHaveLength(2);
    expect(rib.forwarding()).toEqual([
      { id: 'a1', fqdn: 'weather.car.internal', domain: 'car.internal', nextHop: Q, origin: O, path: [Q, O] },
    ]);
    expect(rib.byFqdn('Weather.Car.Internal.')?.peer).toBe(Q);
  });

  it('a re-sent identical route changes nothing; an older seq of the same origin is ignored', () => {
    const rib = new Rib();
    rib.install(route(P, [P, O], { seq: 5 }));
    expect(rib.install(route(P, [P, O], { seq: 5 }))).toBeNull();
    expect(rib.install({ ...route(P, [P, O], { seq: 4 }), jws: 'older' })).toBeNull();
    expect(rib.best('a1')?.record.seq).toBe(5);
  });

  it('withdraw falls back to the next best, then removes', () => {
    const rib = new Rib();
    rib.install(route(P, [P, O]));
    rib.install(route(Q, [Q, 'http://x.example', O]));
    expect(rib.withdraw(P, 'a1')?.after?.peer).toBe(Q);
    expect(rib.withdraw(Q, 'a1')?.after).toBeUndefined();
    expect(rib.withdraw(Q, 'a1')).toBeNull();
    expect(rib.size).toBe(0);
  });

  it('peer down marks its routes inapplicable; END_OF_RIB purges the stale ones; disconnect removes', () => {
    const rib = new Rib();
    rib.install(route(P, [P, O]));
    rib.install(route(P, [P, O], { id: 'a2', fqdn: 'radio.car.internal' }));
    const down = rib.peerDown(P);
    expect(down.map((c) => c.id).sort()).toEqual(['a1', 'a2']);
    expect(rib.forwarding()).toEqual([]);
    expect(rib.allRoutes().every((r) => r.state === 'inapplicable')).toBe(true);
    // The peer comes back and re-advertises only a1.
    rib.install(route(P, [P, O]));
    const purged = rib.purgeInapplicable(P);
    expect(purged).toEqual([]); // a2 was not best any more: nothing visible changes
    expect(rib.allRoutes().map((r) => r.record.id)).toEqual(['a1']);
    expect(rib.peerGone(P).map((c) => c.id)).toEqual(['a1']);
    expect(rib.allRoutes()).toEqual([]);
  });

  it('remote search returns our gateway URL and the next hop', () => {
    const rib = new Rib();
    rib.install(route(P, [P, O]));
    const hits = searchRoutes(rib.bestRoutes(), 'weather forecast for the road', {
      k: 5,
      gatewayUri: 'http://me.example',
    });
    expect(hits[0]).toMatchObject({
      id: 'a1',
      via: P,
      domain: 'car.internal',
      endpoints: [{ protocol: 'a2a', url: 'http://me.example/gw/weather.car.internal/' }],
    });
    expect(searchRoutes(rib.bestRoutes(), 'pizza delivery', { k: 5, gatewayUri: 'http://me.example' })).toEqual([]);
  });
});
