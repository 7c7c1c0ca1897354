import type { Queryable } from '../src/store/index.js';
import { livenessOf, type Liveness } from './lifecycle.js';
import * as repo from './repo.js';
import type { AgentRow } from './repo.js';

/**
 * An in-memory projection of the active agents, by id and by FQDN, with their last heartbeat.
 * Resolve and the gateway read it on every request, so it never touches the store on the hot
 * path; the change feed keeps it current and a sweep picks up other processes' heartbeats.
 */
export class ActiveDirectory {
  private readonly byId = new Map<string, AgentRow>();
  private readonly byFqdn = new Map<string, AgentRow>();
  private readonly beats = new Map<string, number>();
  private lastSweep = new Date(0);

  constructor(
    private readonly heartbeatIntervalMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Loads every active agent (start-up). */
  async load(db: Queryable): Promise<void> {
    this.lastSweep = this.now();
    let afterId: string | undefined;
    for (;;) {
      const page = await repo.listAgents(db, { statuses: ['active'], afterId, limit: 5000 });
      for (const a of page) this.put(a);
      if (page.length < 5000) return;
      afterId = page.at(-1)!.id;
    }
  }

  /** Applies an agent's current row (from the change feed); anything not active leaves. */
  apply(a: AgentRow | undefined, id: string): void {
    const old = this.byId.get(id);
    if (old) {
      this.byId.delete(id);
      this.byFqdn.delete(old.fqdn);
    }
    if (a && a.status === 'active') this.put(a);
    else this.beats.delete(id);
  }

  private put(a: AgentRow): void {
    this.byId.set(a.id, a);
    this.byFqdn.set(a.fqdn, a);
    if (a.lastHeartbeat) this.beat(a.id, a.lastHeartbeat);
  }

  beat(id: string, at: Date): void {
    const t = at.getTime();
    if ((this.beats.get(id) ?? 0) < t) this.beats.set(id, t);
  }

  /** Picks up heartbeats recorded by any process since the last sweep. */
  async sweep(db: Queryable): Promise<void> {
    const since = new Date(this.lastSweep.getTime() - 2000);
    this.lastSweep = this.now();
    for (const h of await repo.heartbeatsSince(db, since)) this.beat(h.id, h.at);
  }

  get(id: string): AgentRow | undefined {
    return this.byId.get(id);
  }

  byName(fqdn: string): AgentRow | undefined {
    return this.byFqdn.get(fqdn.toLowerCase().replace(/\.$/, ''));
  }

  liveness(id: string): Liveness {
    const t = this.beats.get(id);
    return livenessOf(t === undefined ? null : new Date(t), this.now(), this.heartbeatIntervalMs);
  }

  /** Active and not known to be offline: what resolve may return and the gateway may call. */
  reachable(id: string): boolean {
    return this.byId.has(id) && this.liveness(id) !== 'offline';
  }

  all(): IterableIterator<AgentRow> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }
}
