/**
 * Every forwarded call goes to the hash-chained audit log, in batches: calls are queued in
 * memory and written in one transaction per batch (group commit) at most `intervalMs` apart or
 * when `maxBatch` are waiting; the registry's chainer then links them in order.
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
  at: string;
}

export interface AuditSink {
  append(tx: Queryable, entries: readonly { actor: string; action: string; subject?: string | undefined; detail?: Record<string, unknown> }[]): Promise<void>;
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
    private readonly intervalMs = 200,
    private readonly maxBatch = 500,
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
          this.sink.append(
            tx,
            part.map((r) => ({
              actor: `agent:${r.callerId}`,
              action: 'gateway.call',
              subject: r.targetId ?? r.target,
              detail: { ...r },
            })),
          ),
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
