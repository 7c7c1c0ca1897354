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
 * A batch as compact text: the fields that repeat (caller, target, method, path, ...) once per
 * distinct combination, then one short line per call. None of the fields can hold a tab or a
 * newline (names are DNS names; paths with control characters are refused at the door).
 */
export function encodeBatch(calls: readonly CallRecord[]): CallBatchDetail {
  const start = calls.reduce((m, c) => Math.min(m, c.at), Infinity);
  const keyIndex = new Map<string, number>();
  const keys: string[] = [];
  const lines: string[] = [];
  for (const r of calls) {
    const k = `${r.caller}\t${r.callerId}\t${r.target}\t${r.targetId ?? ''}\t${r.skill ?? ''}\t${r.method}\t${r.path}`;
    let i = keyIndex.get(k);
    if (i === undefined) {
      i = keys.length;
      keys.push(k);
      keyIndex.set(k, i);
    }
    lines.push(
      `${r.at - start}\t${i}\t${r.status}\t${r.failure ?? ''}\t${r.bytesIn}\t${r.bytesOut}\t${Math.round(r.ms * 1000) / 1000}`,
    );
  }
  return {
    count: calls.length,
    start: new Date(start).toISOString(),
    keyFields: [...KEY_FIELDS],
    keys: keys.join('\n'),
    fields: [...CALL_FIELDS],
    calls: lines.join('\n'),
  };
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
  private queue: CallRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  dropped = 0;
  written = 0;

  constructor(
    private readonly db: Db,
    private readonly sink: AuditSink,
    private readonly onError: (e: unknown) => void,
    private readonly intervalMs = 250,
    private readonly maxBatch = 2000,
    private readonly maxQueue = 100_000,
  ) {}

  record(r: CallRecord): void {
    if (this.queue.length >= this.maxQueue) {
      this.dropped++;
      return;
    }
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
    this.queue = [];
    this.writing = this.writing.then(() => this.write(batch));
  }

  private async write(batch: CallRecord[]): Promise<void> {
    for (let i = 0; i < batch.length; i += this.maxBatch) {
      const part = batch.slice(i, i + this.maxBatch);
      try {
        await this.db.transaction((tx) =>
          this.sink.append(tx, [
            {
              actor: 'gateway',
              action: 'gateway.calls',
              subject: undefined,
              detail: { ...encodeBatch(part) },
            },
          ]),
        );
        this.written += part.length;
      } catch (e) {
        this.onError(e);
      }
    }
  }

  /** Writes everything queued so far. */
  async flush(): Promise<void> {
    this.kick();
    await this.writing;
  }
}
