/**
 * The Routing Information Base: every route to a remote agent learned from each peer, the best
 * one per agent (shortest PATH, path.ts tie-break), and the forwarding table derived from it.
 * Pure and synchronous; sessions feed it, export reads it.
 *
 * Hold-timer expiry marks a peer's routes `inapplicable` (002 3.4.3): they stay visible but are
 * never best. A re-established session's END_OF_RIB purges those it did not re-advertise; a
 * DISCONNECT (NOTIFICATION CEASE) removes them at once.
 */
import { bestOf, normUri } from './path.js';
import type { AgentRecord } from './types.js';

export interface Route {
  peer: string; // neighbour it came from (normalised URI)
  path: string[]; // as received (PATH[0] = the neighbour)
  record: AgentRecord;
  jws: string; // the originator's signed record, forwarded unchanged
  /** The originator's certificate chain (sent in a CHAIN before the record when it refers to it). */
  x5c?: string[];
  state: 'active' | 'inapplicable';
}

export interface BestChange {
  id: string;
  before: Route | undefined;
  after: Route | undefined;
}

export interface ForwardingEntry {
  id: string;
  fqdn: string;
  domain: string;
  nextHop: string;
  origin: string;
  path: string[];
}

const sameRoute = (a: Route | undefined, b: Route | undefined) =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.peer === b.peer &&
    a.jws === b.jws &&
    a.path.join(' ') === b.path.join(' ') &&
    a.state === b.state);

export class Rib {
  private readonly routes = new Map<string, Map<string, Route>>();
  private readonly bestById = new Map<string, Route>();
  private readonly idByFqdn = new Map<string, string>();

  /** Installs (or replaces) the route for `record.id` learned from `route.peer`. */
  install(route: Route): BestChange | null {
    const peer = normUri(route.peer);
    const r: Route = { ...route, peer };
    let m = this.routes.get(r.record.id);
    const old = m?.get(peer);
    // An older advertisement of the same origin's record never replaces a newer one.
    if (old && old.state === 'active' && old.record.origin === r.record.origin && old.record.seq > r.record.seq)
      return null;
    if (!m) this.routes.set(r.record.id, (m = new Map()));
    m.set(peer, r);
    return this.recompute(r.record.id);
  }

  withdraw(peer: string, id: string): BestChange | null {
    const m = this.routes.get(id);
    if (!m?.delete(normUri(peer))) return null;
    if (m.size === 0) this.routes.delete(id);
    return this.recompute(id);
  }

  /** Hold timer expired: keep the routes but make them unusable. */
  peerDown(peer: string): BestChange[] {
    return this.eachOf(peer, (m, p, r) => m.set(p, { ...r, state: 'inapplicable' }));
  }

  /** Disconnect: forget everything learned from the peer. */
  peerGone(peer: string): BestChange[] {
    return this.eachOf(peer, (m, p) => m.delete(p));
  }

  /** After a full table (END_OF_RIB): drop the peer's routes still inapplicable. */
  purgeInapplicable(peer: string): BestChange[] {
    return this.eachOf(peer, (m, p, r) => {
      if (r.state === 'inapplicable') m.delete(p);
    });
  }

  private eachOf(peer: string, f: (m: Map<string, Route>, p: string, r: Route) => void): BestChange[] {
    const p = normUri(peer);
    const out: BestChange[] = [];
    for (const [id, m] of [...this.routes]) {
      const r = m.get(p);
      if (!r) continue;
      f(m, p, r);
      if (m.size === 0) this.routes.delete(id);
      const c = this.recompute(id);
      if (c) out.push(c);
    }
    return out;
  }

  private recompute(id: string): BestChange | null {
    const before = this.bestById.get(id);
    const m = this.routes.get(id);
    const after = m ? bestOf([...m.values()].filter((r) => r.state === 'active')) : undefined;
    if (before) this.idByFqdn.delete(before.record.fqdn);
    if (after) {
      this.bestById.set(id, after);
      this.idByFqdn.set(after.record.fqdn, id);
    } else this.bestById.delete(id);
    return sameRoute(before, after) ? null : { id, before, after };
  }

  best(id: string): Route | undefined {
    return this.bestById.get(id);
  }

  byFqdn(fqdn: string): Route | undefined {
    const id = this.idByFqdn.get(fqdn.toLowerCase().replace(/\.$/, ''));
    return id === undefined ? undefined : this.bestById.get(id);
  }

  bestRoutes(): IterableIterator<Route> {
    return this.bestById.values();
  }

  /** All routes for an agent (best first is not guaranteed). */
  routesOf(id: string): Route[] {
    return [...(this.routes.get(id)?.values() ?? [])];
  }

  allRoutes(): Route[] {
    return [...this.routes.values()].flatMap((m) => [...m.values()]);
  }

  forwarding(): ForwardingEntry[] {
    return [...this.bestById.values()]
      .map((r) => ({
        id: r.record.id,
        fqdn: r.record.fqdn,
        domain: r.record.domain,
        nextHop: r.peer,
        origin: r.record.origin,
        path: r.path,
      }))
      .sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
  }

  get size(): number {
    return this.bestById.size;
  }
}
