import { combine, type Db, type Queryable, type Statement } from '../store/index.js';

export interface Change {
  seq: number;
  entity: string;
  entityId: string;
  kind: string;
}

export type ChangeHandler = (change: Change) => void | Promise<void>;

const CHANNEL = 'ans_changes';
// Serialises change-row inserts so that seq order equals commit order: a reader that has seen
// seq N can never later find a committed N-1.
const CHANGE_LOCK = 7_264_102;
const PAGE = 1000;

/** The statement that appends one change-feed row (see `recordChange`). */
function changeStatement(entity: string, entityId: string, kind: string): Statement {
  // The INSERT selects from the lock's row, so the lock is taken before the sequence is drawn,
  // and it is held until commit, so seq order is commit order.
  return {
    text: `WITH l AS (SELECT pg_advisory_xact_lock($5) AS locked),
          c AS (INSERT INTO changes (entity, entity_id, kind) SELECT $1, $2, $3 FROM l RETURNING seq)
     SELECT seq, pg_notify($4, seq::text) FROM c`,
    params: [entity, entityId, kind, CHANNEL, CHANGE_LOCK],
  };
}

/**
 * Records a change inside the caller's transaction (or as a transaction of its own when `tx` is
 * the database); the feed delivers it after commit. Call it last: it takes the change lock, which
 * is held until commit. `with` are the writes the change describes (the row itself, its audit
 * entry): they run in the same statement, so the whole change costs one round trip.
 */
export async function recordChange(
  tx: Queryable,
  entity: string,
  entityId: string,
  kind: string,
  writes: readonly Statement[] = [],
): Promise<number> {
  const st = combine(writes, changeStatement(entity, entityId, kind));
  const rows = await tx.query<{ seq: string }>(st.text, st.params);
  return Number(rows[0]!.seq);
}

/**
 * The event bus: an ordered feed of committed changes read back from the store. Local writers
 * call `poke()` after commit; other processes on the same PostgreSQL wake it via LISTEN/NOTIFY,
 * and a slow poll covers a lost notification. Handlers run in seq order, one change at a time.
 */
export class ChangeFeed {
  private last = 0;
  private requested = 0;
  private readonly handlers = new Set<ChangeHandler>();
  private running: Promise<void> | undefined;
  private again = false;
  private unlisten: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters: { seq: number; resolve: () => void }[] = [];

  constructor(
    private readonly db: Db,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  get lastSeq(): number {
    return this.last;
  }

  /** Starts after `fromSeq` (the newest seq the projections were built at). */
  async start(fromSeq: number, pollMs = 1000): Promise<void> {
    this.last = fromSeq;
    this.requested = fromSeq;
    // Our own commits poke the feed directly; a notification for a seq already delivered is ours.
    this.unlisten = await this.db.listen(CHANNEL, (payload) => this.poke(Number(payload) || undefined));
    this.timer = setInterval(() => this.poke(), pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unlisten?.();
    await this.running;
  }

  subscribe(h: ChangeHandler): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }

  /** Resolves once every change up to `seq` has been delivered. */
  waitFor(seq: number): Promise<void> {
    if (seq <= this.last) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ seq, resolve });
      this.poke();
    });
  }

  /**
   * Asks for a drain. With `seq`, a poke for a change an earlier poke already covers (our own
   * commit's NOTIFY after the direct poke) costs nothing.
   */
  poke(seq?: number): void {
    if (seq !== undefined) {
      if (seq <= this.requested) return;
      this.requested = seq;
    }
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      let rows: { seq: string; entity: string; entity_id: string; kind: string }[];
      try {
        rows = await this.db.query(
          'SELECT seq, entity, entity_id, kind FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2',
          [this.last, PAGE],
        );
      } catch (e) {
        this.onError(e);
        return;
      }
      if (rows.length === 0) return;
      const more = rows.length === PAGE;
      for (const r of rows) {
        const change: Change = { seq: Number(r.seq), entity: r.entity, entityId: r.entity_id, kind: r.kind };
        for (const h of this.handlers) {
          try {
            await h(change);
          } catch (e) {
            this.onError(e);
          }
        }
        this.last = change.seq;
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const w = this.waiters[i]!;
          if (w.seq <= this.last) {
            this.waiters.splice(i, 1);
            w.resolve();
          }
        }
      }
      // A short page is the end; a poke that arrived meanwhile runs another drain.
      if (!more) return;
    }
  }
}

/** The newest committed seq, for projections built from a full read at start-up. */
export async function currentSeq(db: Queryable): Promise<number> {
  const rows = await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM changes');
  return Number(rows[0]?.seq ?? 0);
}
