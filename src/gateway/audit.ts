/**
 * Every forwarded call goes to the hash-chained audit log, in batches: calls are queued in
 * memory and written at most `intervalMs` apart, or as soon as `maxBatch` are waiting, as ONE
 * audit entry (`action: 'gateway.calls'`) whose detail lists every call of the batch as compact
 * text (see `encodeBatch`). One row and one hash per batch instead of per call is what
 * keeps the embedded store off the data plane's hot path (a row per call cost ~40% of the
 * gateway's CPU on PGlite); the chain still covers every call. `expandCalls` turns an entry
 * back into records.
 */
import type { Db, Queryable } from '../store/index.js';

export interface CallRecord {
  caller: string; // FQDN
  callerId: string;
  target: string; // FQDN
  targetId: string | undefined;
  skill: string | undefined;
  method: string;
  path: string;
  status: number;
  failure: string | undefined;
  bytesIn: number;
  bytesOut: number;
  ms: number;
  /** Epoch milliseconds (written as ISO 8601). */
  at: number;
}

export interface AuditSink {
  append(
    tx: Queryable,
    entries: readonly {
      actor: string;
      action: string;
      subject?: string | undefined;
      detail?: Record<string, unknown>;
    }[],
  ): Promise<void>;
}

/** What repeats between calls: one line per distinct key in `detail.keys`. */
export const KEY_FIELDS = ['caller', 'callerId', 'target', 'targetId', 'skill', 'method', 'path'] as const;
/** One line per call in `detail.calls`: ms after `detail.start`, index into `keys`, outcome. */
export const CALL_FIELDS = ['atOffsetMs', 'key', 'status', 'failure', 'bytesIn', 'bytesOut', 'ms'] as const;

export interface CallBatchDetail {
  count: number;
  start: string; // ISO 8601
  keyFields: readonly string[];
  keys: string; // tab-separated lines
  fields: readonly string[];
  calls: string; // tab-separated lines
}

/**
 * Calls waiting for the audit log, column by column: numbers in typed arrays and each distinct
 * key (caller, target, method, path, ...) once, so a queued call holds no object of its own.
 * The queue lives up to a second; objects kept that long outlive the young generation and
 * made the collector copy and promote every call record.
 */
export class CallColumns {
  private readonly keyIndex = new Map<string, number>();
  private readonly keys: string[] = [];
  private readonly failureIndex = new Map<string, number>([['', 0]]);
  private readonly failures: string[] = [''];
  private at: Float64Array;
  private key: Uint32Array;
  private status: Uint16Array;
  private failure: Uint8Array;
  private bytesIn: Float64Array;
  private bytesOut: Float64Array;
  private ms: Float64Array;
  length = 0;

  constructor(capacity = 256) {
    this.at = new Float64Array(capacity);
    this.key = new Uint32Array(capacity);
    this.status = new Uint16Array(capacity);
    this.failure = new Uint8Array(capacity);
    this.bytesIn = new Float64Array(capacity);
    this.bytesOut = new Float64Array(capacity);
    this.ms = new Float64Array(capacity);
  }

  push(r: CallRecord): void {
    const n = this.length;
    if (n === this.at.length) this.grow(n * 2);
    const k = `${r.caller}\t${r.callerId}\t${r.target}\t${r.targetId ?? ''}\t${r.skill ?? ''}\t${r.method}\t${r.path}`;
    let i = this.keyIndex.get(k);
    if (i === undefined) {
      i = this.keys.length;
      this.keys.push(k);
      this.keyIndex.set(k, i);
    }
    const f = r.failure ?? '';
    let fi = this.failureIndex.get(f);
    if (fi === undefined) {
      fi = this.failures.length;
      this.failures.push(f);
      this.failureIndex.set(f, fi);
    }
    this.at[n] = r.at;
    this.key[n] = i;
    this.status[n] = r.status;
    this.failure[n] = fi;
    this.bytesIn[n] = r.bytesIn;
    this.bytesOut[n] = r.bytesOut;
    this.ms[n] = r.ms;
    this.length = n + 1;
  }

  private grow(capacity: number): void {
    const copy = <T extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(a: T, b: T): T => {
      b.set(a);
      return b;
    };
    this.at = copy(this.at, new Float64Array(capacity));
    this.key = copy(this.key, new Uint32Array(capacity));
    this.status = copy(this.status, new Uint16Array(capacity));
    this.failure = copy(this.failure, new Uint8Array(capacity));
    this.bytesIn = copy(this.bytesIn, new Float64Array(capacity));
    this.bytesOut = copy(this.bytesOut, new Float64Array(capacity));
    this.ms = copy(this.ms, new Float64Array(capacity));
  }

  /**
   * The batch as compact text: the fields that repeat once per distinct combination, then one
   * short line per call. None of the fields can hold a tab or a newline (names are DNS names;
   * paths with control characters are refused at the door).
   */
  encode(): CallBatchDetail {
    const n = this.length;
    let start = Infinity;
    for (let j = 0; j < n; j++) if (this.at[j]! < start) start = this.at[j]!;
    const lines: string[] = new Array<string>(n);
    for (let j = 0; j < n; j++)
      lines[j] =
        `${this.at[j]! - start}\t${this.key[j]}\t${this.status[j]}\t${this.failures[this.failure[j]!]}\t` +
        `${this.bytesIn[j]}\t${this.bytesOut[j]}\t${Math.round(this.ms[j]! * 1000) / 1000}`;
    return {
      count: n,
      start: new Date(start).toISOString(),
      keyFields: [...KEY_FIELDS],
      keys: this.keys.join('\n'),
      fields: [...CALL_FIELDS],
      calls: lines.join('\n'),
    };
  }
}

/** A batch of call records as an audit entry's detail (see `CallColumns.encode`). */
export function encodeBatch(calls: readonly CallRecord[]): CallBatchDetail {
  const c = new CallColumns(Math.max(1, calls.length));
  for (const r of calls) c.push(r);
  return c.encode();
}

/** The call records of a `gateway.calls` audit entry. */
export function expandCalls(d: CallBatchDetail): CallRecord[] {
  if (!d.calls) return [];
  const start = Date.parse(d.start);
  const keys = d.keys.split('\n').map((l) => l.split('\t'));
  const opt = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  return d.calls.split('\n').map((line) => {
    const [off, key, status, failure, bytesIn, bytesOut, ms] = line.split('\t');
    const k = keys[Number(key)] ?? [];
    return {
      at: start + Number(off),
      caller: k[0] ?? '',
      callerId: k[1] ?? '',
      target: k[2] ?? '',
      targetId: opt(k[3]),
      skill: opt(k[4]),
      method: k[5] ?? '',
      path: k[6] ?? '',
      status: Number(status),
      failure: opt(failure),
      bytesIn: Number(bytesIn),
      bytesOut: Number(bytesOut),
      ms: Number(ms),
    };
  });
}

export class CallAudit {
  private queue = new CallColumns();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Calls queued or being written (bounded by `maxQueue`). */
  private pending = 0;
  dropped = 0;
  written = 0;

  constructor(
    private readonly db: Db,
    private readonly sink: AuditSink,
    private readonly onError: (e: unknown) => void,
    // Each batch is a transaction on the store, which costs ~10 ms on PGlite whatever its
    // size: a second or 10,000 calls apart keeps that near 1 us a call at 10k calls/s.
    private readonly intervalMs = 1000,
    private readonly maxBatch = 10_000,
    private readonly maxQueue = 100_000,
  ) {}

  record(r: CallRecord): void {
    if (this.pending >= this.maxQueue) {
      this.dropped++;
      return;
    }
    this.pending++;
    this.queue.push(r);
    if (this.queue.length >= this.maxBatch) this.kick();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.kick(), this.intervalMs);
      this.timer.unref();
    }
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = new CallColumns();
    this.writing = this.writing.then(() => this.write(batch));
  }

  private async write(batch: CallColumns): Promise<void> {
    try {
      await this.db.transaction((tx) =>
        this.sink.append(tx, [
          { actor: 'gateway', action: 'gateway.calls', subject: undefined, detail: { ...batch.encode() } },
        ]),
      );
      this.written += batch.length;
    } catch (e) {
      this.onError(e);
    } finally {
      this.pending -= batch.length;
    }
  }

  /** Writes everything queued so far. */
  async flush(): Promise<void> {
    this.kick();
    await this.writing;
  }
}
