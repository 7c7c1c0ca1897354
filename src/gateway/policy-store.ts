/**
 * Policies at rest (`policies` table) and the compiled set the hot path reads. Every change
 * records a `policy` change on the feed, so all processes on the store reload.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../store/index.js';
import { recordChange } from '../events/index.js';
import { GatewayErrors } from './errors.js';
import { PolicySet, normalisePattern, type Effect, type PolicyRule } from './policy.js';

export interface StoredPolicy extends PolicyRule {
  createdAt: string;
}

interface Row {
  id: string;
  caller: string;
  target: string;
  effect: Effect;
  created_at: Date | string;
}

const toPolicy = (r: Row): StoredPolicy => ({
  id: r.id,
  caller: r.caller,
  target: r.target,
  effect: r.effect,
  createdAt: new Date(r.created_at).toISOString(),
});

export class PolicyStore {
  private set: PolicySet;

  constructor(
    private readonly db: Db,
    private readonly zone: string, // normalised
  ) {
    this.set = new PolicySet([], zone);
  }

  get current(): PolicySet {
    return this.set;
  }

  async reload(): Promise<void> {
    const rows = await this.db.query<Row>(
      'SELECT id, caller, target, effect, created_at FROM policies ORDER BY created_at, id',
    );
    this.set = new PolicySet(rows.map(toPolicy), this.zone);
  }

  async list(opts: {
    limit: number;
    cursor?: string | undefined;
  }): Promise<{ items: StoredPolicy[]; next: string | null }> {
    const rows = await this.db.query<Row>(
      'SELECT id, caller, target, effect, created_at FROM policies WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2',
      [opts.cursor ?? null, opts.limit + 1],
    );
    const items = rows.slice(0, opts.limit).map(toPolicy);
    return { items, next: rows.length > opts.limit ? items.at(-1)!.id : null };
  }

  async add(
    p: { caller: string; target: string; effect: Effect },
    audit: (tx: Queryable, stored: StoredPolicy) => Promise<void>,
  ): Promise<StoredPolicy> {
    const caller = normalisePattern(p.caller);
    const target = normalisePattern(p.target);
    if (!caller) throw GatewayErrors.badPolicy(`caller '${p.caller}' is not an FQDN, *.<domain> or *`);
    if (!target) throw GatewayErrors.badPolicy(`target '${p.target}' is not an FQDN, *.<domain> or *`);
    const id = `pol_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const stored = await this.db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        'INSERT INTO policies (id, caller, target, effect) VALUES ($1, $2, $3, $4) RETURNING id, caller, target, effect, created_at',
        [id, caller, target, p.effect],
      );
      const s = toPolicy(rows[0]!);
      await audit(tx, s);
      await recordChange(tx, 'policy', id, 'policy.added');
      return s;
    });
    await this.reload();
    return stored;
  }

  async remove(id: string, audit: (tx: Queryable, removed: StoredPolicy) => Promise<void>): Promise<StoredPolicy> {
    const removed = await this.db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        'DELETE FROM policies WHERE id = $1 RETURNING id, caller, target, effect, created_at',
        [id],
      );
      if (!rows[0]) throw GatewayErrors.unknownPolicy(id);
      const s = toPolicy(rows[0]);
      await audit(tx, s);
      await recordChange(tx, 'policy', id, 'policy.removed');
      return s;
    });
    await this.reload();
    return removed;
  }
}
