/**
 * The interaction graph (who calls whom, how often, how often it fails, how long it takes),
 * shared by every process on the store: each process counts its calls in memory and adds the
 * counts to `gateway_edges` every second (one statement for all edges), so `GET /v1/graph` on
 * any process shows every process's calls, at most a second late.
 */
import type { Db } from '../store/index.js';

export interface Edge {
  caller: string;
  target: string;
  calls: number;
  errors: number; // 5xx or no answer
  denied: number; // 401/403/429
  errorRate: number;
  meanMs: number;
  lastAt: string;
}

interface Acc {
  calls: number;
  errors: number;
  denied: number;
  totalMs: number;
  first: number;
  last: number;
}

interface Row {
  caller: string;
  target: string;
  calls: string | number;
  errors: string | number;
  denied: string | number;
  total_ms: number;
  first_at: Date | string;
  last_at: Date | string;
}

/** Edges one process adds at most (a caller spraying unknown names cannot grow it further). */
const MAX_EDGES = 100_000;

const UPSERT = `INSERT INTO gateway_edges AS e (caller, target, calls, errors, denied, total_ms, first_at, last_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[],
                       $7::timestamptz[], $8::timestamptz[])
  ON CONFLICT (caller, target) DO UPDATE SET
    calls = e.calls + EXCLUDED.calls, errors = e.errors + EXCLUDED.errors, denied = e.denied + EXCLUDED.denied,
    total_ms = e.total_ms + EXCLUDED.total_ms, first_at = LEAST(e.first_at, EXCLUDED.first_at),
    last_at = GREATEST(e.last_at, EXCLUDED.last_at)`;

export class CallGraph {
  /** Counts not yet added to the store, by `caller \t target`. */
  private delta = new Map<string, Acc>();
  private readonly known = new Set<string>();
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly onError: (e: unknown) => void = () => undefined,
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  note(caller: string, target: string, status: number, ms: number, at: number): void {
    const key = `${caller}\t${target}`;
    let e = this.delta.get(key);
    if (!e) {
      if (!this.known.has(key)) {
        if (this.known.size >= MAX_EDGES) return;
        this.known.add(key);
      }
      e = { calls: 0, errors: 0, denied: 0, totalMs: 0, first: at, last: at };
      this.delta.set(key, e);
    }
    e.calls++;
    if (status === 0 || status >= 500) e.errors++;
    else if (status === 401 || status === 403 || status === 429) e.denied++;
    e.totalMs += ms;
    if (at > e.last) e.last = at;
  }

  /** Adds this process's counts so far to the store. */
  flush(): Promise<void> {
    const batch = this.delta;
    if (batch.size > 0) {
      this.delta = new Map();
      this.writing = this.writing.then(() => this.write(batch));
    }
    return this.writing;
  }

  private async write(batch: Map<string, Acc>): Promise<void> {
    const cols: unknown[][] = [[], [], [], [], [], [], [], []];
    for (const [key, e] of batch) {
      const tab = key.indexOf('\t');
      const row = [
        key.slice(0, tab),
        key.slice(tab + 1),
        e.calls,
        e.errors,
        e.denied,
        e.totalMs,
        new Date(e.first).toISOString(),
        new Date(e.last).toISOString(),
      ];
      row.forEach((v, i) => cols[i]!.push(v));
    }
    try {
      await this.db.query(UPSERT, cols);
    } catch (e) {
      // Keep the counts for the next try.
      for (const [key, a] of batch) {
        const cur = this.delta.get(key);
        if (!cur) this.delta.set(key, a);
        else {
          cur.calls += a.calls;
          cur.errors += a.errors;
          cur.denied += a.denied;
          cur.totalMs += a.totalMs;
          cur.first = Math.min(cur.first, a.first);
          cur.last = Math.max(cur.last, a.last);
        }
      }
      this.onError(e);
    }
  }

  /** Every process's edges (this one's flushed first), busiest first; `since` is the oldest call. */
  async snapshot(): Promise<{ since: string | null; nodes: string[]; edges: Edge[] }> {
    await this.flush();
    const rows = await this.db.query<Row>(
      'SELECT caller, target, calls, errors, denied, total_ms, first_at, last_at FROM gateway_edges',
    );
    const nodes = new Set<string>();
    let since = Infinity;
    const edges = rows.map((r): Edge => {
      nodes.add(r.caller).add(r.target);
      since = Math.min(since, new Date(r.first_at).getTime());
      const calls = Number(r.calls);
      const errors = Number(r.errors);
      return {
        caller: r.caller,
        target: r.target,
        calls,
        errors,
        denied: Number(r.denied),
        errorRate: calls ? Math.round((errors / calls) * 1e4) / 1e4 : 0,
        meanMs: calls ? Math.round((r.total_ms / calls) * 100) / 100 : 0,
        lastAt: new Date(r.last_at).toISOString(),
      };
    });
    edges.sort((a, b) => b.calls - a.calls || a.caller.localeCompare(b.caller) || a.target.localeCompare(b.target));
    return { since: Number.isFinite(since) ? new Date(since).toISOString() : null, nodes: [...nodes].sort(), edges };
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
