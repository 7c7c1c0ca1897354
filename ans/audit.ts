import { createHash } from 'node:crypto';
import type { Db, Queryable, Statement } from '../src/store/index.js';

export interface AuditEntry {
  actor: string;
  action: string;
  subject?: string | undefined;
  detail?: Record<string, unknown>;
}

export interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  action: string;
  subject: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export type AuditVerdict =
  { ok: true; checked: number } | { ok: false; checked: number; firstBroken: number; why: string };

const AUDIT_LOCK = 7_264_103;
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Where the chain starts once retention has removed older entries: the first kept entry and the
 * hash it links to. Kept in `settings` and repeated in the chained `audit.pruned` entry, so
 * removing more entries (or moving the anchor) shows up in `verify`.
 */
export interface AuditAnchor {
  seq: number;
  prevHash: string;
}
const ANCHOR_KEY = 'audit.anchor';

/** JSON with object keys sorted, so the hash does not depend on how jsonb reorders keys. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function entryHash(prevHash: string, r: Omit<AuditRecord, 'hash' | 'prevHash'>): string {
  const body = canonical({
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    detail: r.detail,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

interface AuditRow {
  seq: string | number;
  at: Date | string;
  actor: string;
  action: string;
  subject: string | null;
  detail: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

function fromRow(r: AuditRow): AuditRecord {
  return {
    seq: Number(r.seq),
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    detail: r.detail,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/**
 * The tamper-evident audit log: each entry carries the SHA-256 of the previous one.
 *
 * Writers never queue on the chain: `append` puts entries in `audit_outbox` inside the caller's
 * transaction (so an entry commits exactly with the change it describes), and `flush` moves
 * committed entries into `audit_log` in batches, one chainer at a time (advisory lock), computing
 * the chain in order. That is group commit for the audit log; the chain order is the order the
 * chainer saw the entries commit. Reads flush first, so they see every committed entry.
 */
export class AuditLog {
  private flushing: Promise<void> | undefined;
  private again = false;
  /** When this process last wrote an entry (each process chains what it writes) and last flushed. */
  private lastWrite = 0;
  private lastFlush = 0;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async append(tx: Queryable, entries: AuditEntry | readonly AuditEntry[]): Promise<void> {
    const st = this.entryStatement(entries);
    if (st) await tx.query(st.text, st.params);
  }

  /** The outbox INSERT for `entries` as a statement, to run with the change it describes. */
  entryStatement(entries: AuditEntry | readonly AuditEntry[]): Statement | undefined {
    const list = Array.isArray(entries) ? entries : [entries as AuditEntry];
    if (list.length === 0) return undefined;
    this.lastWrite = Date.now();
    const at = this.now().toISOString();
    const params: unknown[] = [];
    const values: string[] = [];
    for (const e of list) {
      const b = params.length;
      values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5})`);
      params.push(at, e.actor, e.action, e.subject ?? null, JSON.stringify(e.detail ?? {}));
    }
    return {
      text: `INSERT INTO audit_outbox (at, actor, action, subject, detail) VALUES ${values.join(', ')}`,
      params,
    };
  }

  /**
   * The periodic chainer: flushes while this process has been writing entries (within the last
   * second, so an entry still being committed is not missed), and otherwise only every `idleMs`,
   * for entries a crashed process left in the outbox. An idle ANS then does not run a
   * transaction four times a second.
   */
  tick(idleMs = 5000): Promise<void> {
    const now = Date.now();
    if (now - this.lastWrite < 1000 || now - this.lastFlush >= idleMs) return this.flush();
    return Promise.resolve();
  }

  /** Chains every committed outbox entry; concurrent calls coalesce. */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      this.lastFlush = Date.now();
      do {
        this.again = false;
        while (await this.chainBatch(1000)) {
          /* until the outbox is empty */
        }
      } while (this.again);
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private chainBatch(limit: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
      const pending = await tx.query<{
        id: string;
        at: Date | string;
        actor: string;
        action: string;
        subject: string | null;
        detail: Record<string, unknown>;
      }>('SELECT id, at, actor, action, subject, detail FROM audit_outbox ORDER BY id LIMIT $1', [limit]);
      if (pending.length === 0) return false;
      const last = await tx.query<{ seq: string; hash: string }>(
        'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
      );
      let seq = Number(last[0]?.seq ?? 0);
      let prev = last[0]?.hash ?? GENESIS_HASH;
      const cols: unknown[] = [];
      const values: string[] = [];
      for (const e of pending) {
        seq += 1;
        const rec = {
          seq,
          at: new Date(e.at).toISOString(),
          actor: e.actor,
          action: e.action,
          subject: e.subject,
          detail: e.detail,
        };
        const hash = entryHash(prev, rec);
        const b = cols.length;
        values.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8})`);
        cols.push(seq, rec.at, rec.actor, rec.action, rec.subject, JSON.stringify(rec.detail), prev, hash);
        prev = hash;
      }
      await tx.query(
        `INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES ${values.join(', ')}`,
        cols,
      );
      await tx.query('DELETE FROM audit_outbox WHERE id = ANY($1::bigint[])', [pending.map((e) => e.id)]);
      return pending.length === limit;
    });
  }

  async list(opts: { after?: number; limit: number; subject?: string }): Promise<AuditRecord[]> {
    await this.flush();
    return this.page(opts);
  }

  private async page(opts: { after?: number; limit: number; subject?: string }): Promise<AuditRecord[]> {
    const rows = await this.db.query<AuditRow>(
      `SELECT * FROM audit_log WHERE seq > $1 AND ($2::text IS NULL OR subject = $2) ORDER BY seq LIMIT $3`,
      [opts.after ?? 0, opts.subject ?? null, opts.limit],
    );
    return rows.map(fromRow);
  }

  /**
   * Retention: removes the entries older than `before` (always keeping the newest), moves the
   * anchor to the first kept entry and records the pruning as an entry of its own.
   * Returns how many entries were removed.
   */
  async prune(before: Date): Promise<number> {
    await this.flush();
    const removed = await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
      const [r] = await tx.query<{ cut: string | null; top: string | null }>(
        'SELECT (SELECT max(seq) FROM audit_log WHERE at < $1) AS cut, (SELECT max(seq) FROM audit_log) AS top',
        [before.toISOString()],
      );
      const cut = Math.min(Number(r?.cut ?? 0), Number(r?.top ?? 0) - 1);
      const [first] = await tx.query<{ seq: string; prev_hash: string }>(
        'SELECT seq, prev_hash FROM audit_log WHERE seq = $1',
        [cut + 1],
      );
      if (cut < 1 || !first) return 0;
      const [gone] = await tx.query<{ n: string }>(
        'WITH d AS (DELETE FROM audit_log WHERE seq <= $1 RETURNING 1) SELECT count(*)::text AS n FROM d',
        [cut],
      );
      const anchor: AuditAnchor = { seq: Number(first.seq), prevHash: first.prev_hash };
      await tx.query(
        `INSERT INTO settings (key, value) VALUES ($1, $2::jsonb)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
        [ANCHOR_KEY, JSON.stringify(anchor)],
      );
      const n = Number(gone?.n ?? 0);
      await this.append(tx, {
        actor: 'system:retention',
        action: 'audit.pruned',
        detail: { removed: n, before: before.toISOString(), anchor },
      });
      return n;
    });
    await this.flush();
    return removed;
  }

  private async anchor(): Promise<AuditAnchor | undefined> {
    const [r] = await this.db.query<{ value: AuditAnchor }>('SELECT value FROM settings WHERE key = $1', [ANCHOR_KEY]);
    return r?.value;
  }

  /** Walks the whole chain in pages and names the first entry whose hash or link is wrong. */
  async verify(): Promise<AuditVerdict> {
    await this.flush();
    const anchor = await this.anchor();
    let prev = anchor?.prevHash ?? GENESIS_HASH;
    let expectSeq = anchor?.seq ?? 1;
    let checked = 0;
    let lastAnchor: unknown;
    for (;;) {
      const page = await this.page({ after: expectSeq - 1, limit: 5000 });
      if (page.length === 0) {
        if (anchor && canonical(lastAnchor) !== canonical(anchor))
          return { ok: false, checked, firstBroken: anchor.seq, why: 'the retention anchor was moved' };
        return { ok: true, checked };
      }
      for (const r of page) {
        if (r.action === 'audit.pruned') lastAnchor = r.detail['anchor'];
        if (r.seq !== expectSeq) return { ok: false, checked, firstBroken: expectSeq, why: 'entry missing' };
        if (r.prevHash !== prev)
          return { ok: false, checked, firstBroken: r.seq, why: 'link to the previous entry broken' };
        if (entryHash(prev, r) !== r.hash)
          return { ok: false, checked, firstBroken: r.seq, why: 'entry content does not match its hash' };
        prev = r.hash;
        expectSeq += 1;
        checked += 1;
      }
    }
  }
}
