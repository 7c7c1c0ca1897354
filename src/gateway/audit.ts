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
 * Calls column by column, as a data-plane worker sends them to the main process: each distinct
 * key (`KEY_FIELDS`, tab-separated) and failure once, numbers in typed arrays, one entry per
 * call in each.
 */
export interface CallBatch {
  keys: string[];
  failures: string[];
  at: Float64Array;
  key: Uint32Array;
  status: Uint16Array;
  failure: Uint8Array;
  bytesIn: Float64Array;
  bytesOut: Float64Array;
  ms: Float64Array;
}

type Numbers = Omit<CallBatch, 'keys' | 'failures'>;

function columns(capacity: number, from?: Numbers): Numbers {
  const c: Numbers = {
    at: new Float64Array(capacity),
    key: new Uint32Array(capacity),
    status: new Uint16Array(capacity),
    failure: new Uint8Array(capacity),
    bytesIn: new Float64Array(capacity),
    bytesOut: new Float64Array(capacity),
    ms: new Float64Array(capacity),
  };
  if (from) for (const k of Object.keys(c) as (keyof Numbers)[]) c[k].set(from[k]);
  return c;
}

/** Distinct strings numbered in order of first sight (a column stores the number). */
class Interned {
  private readonly index = new Map<string, number>();
  readonly values: string[] = [];

  constructor(first?: string) {
    if (first !== undefined) this.of(first);
  }

  of(v: string): number {
    let i = this.index.get(v);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(v);
      this.index.set(v, i);
    }
    return i;
  }
}

/**
 * Calls waiting for the audit log (or for the main process), column by column, so a queued
 * call holds no object of its own. Queues live up to a second; objects kept that long outlive
 * the young generation and made the collector copy and promote every call record.
 */
export class CallColumns {
  private readonly keys = new Interned();
  /** '' (no failure) is number 0. */
  private readonly failures = new Interned('');
  private c: Numbers;
  length = 0;

  constructor(capacity = 256) {
    this.c = columns(capacity);
  }

  push(r: CallRecord): void {
    const k = `${r.caller}\t${r.callerId}\t${r.target}\t${r.targetId ?? ''}\t${r.skill ?? ''}\t${r.method}\t${r.path}`;
    this.put(this.keys.of(k), this.failures.of(r.failure ?? ''), r.at, r.status, r.bytesIn, r.bytesOut, r.ms);
  }

  /** Call `i` of another process's batch. */
  pushFrom(b: CallBatch, i: number): void {
    const f = b.failures[b.failure[i]!] ?? '';
    this.put(
      this.keys.of(b.keys[b.key[i]!]!),
      this.failures.of(f),
      b.at[i]!,
      b.status[i]!,
      b.bytesIn[i]!,
      b.bytesOut[i]!,
      b.ms[i]!,
    );
  }

  private put(key: number, failure: number, at: number, status: number, bytesIn: number, bytesOut: number, ms: number) {
    const n = this.length;
    if (n === this.c.at.length) this.c = columns(n * 2, this.c);
    const c = this.c;
    c.at[n] = at;
    c.key[n] = key;
    c.status[n] = status;
    c.failure[n] = failure;
    c.bytesIn[n] = bytesIn;
    c.bytesOut[n] = bytesOut;
    c.ms[n] = ms;
    this.length = n + 1;
  }

  /** The calls so far as a batch (copies, to send to another process). */
  batch(): CallBatch {
    const n = this.length;
    const c = this.c;
    return {
      keys: this.keys.values,
      failures: this.failures.values,
      at: c.at.slice(0, n),
      key: c.key.slice(0, n),
      status: c.status.slice(0, n),
      failure: c.failure.slice(0, n),
      bytesIn: c.bytesIn.slice(0, n),
      bytesOut: c.bytesOut.slice(0, n),
      ms: c.ms.slice(0, n),
    };
  }

  /**
   * The batch as compact text: the fields that repeat once per distinct combination, then one
   * short line per call. None of the fields can hold a tab or a newline (names are DNS names;
   * paths with control characters are refused at the door).
   */
  encode(): CallBatchDetail {
    const n = this.length;
    const c = this.c;
    let start = Infinity;
    for (let j = 0; j < n; j++) if (c.at[j]! < start) start = c.at[j]!;
    const lines: string[] = new Array<string>(n);
    for (let j = 0; j < n; j++)
      lines[j] =
        `${c.at[j]! - start}\t${c.key[j]}\t${c.status[j]}\t${this.failures.values[c.failure[j]!]}\t` +
        `${c.bytesIn[j]}\t${c.bytesOut[j]}\t${Math.round(c.ms[j]! * 1000) / 1000}`;
    return {
      count: n,
      start: new Date(start).toISOString(),
      keyFields: [...KEY_FIELDS],
      keys: this.keys.values.join('\n'),
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
    if (this.admit()) {
      this.queue.push(r);
      this.queued();
    }
  }

  /** Call `i` of a data-plane worker's batch. */
  recordFrom(b: CallBatch, i: number): void {
    if (this.admit()) {
      this.queue.pushFrom(b, i);
      this.queued();
    }
  }

  private admit(): boolean {
    if (this.pending >= this.maxQueue) {
      this.dropped++;
      return false;
    }
    this.pending++;
    return true;
  }

  private queued(): void {
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
