/**
 * Human in the loop: a call to a skill marked `requireHumanApproval` is held until an admin
 * approves (forwarded) or denies (403) it, or the timeout passes (504). Tickets live in the
 * store (`gateway_approvals`), so every `ans serve` on it lists them and any of them may decide
 * one; the call itself waits in the process that holds the caller's connection. Every move
 * out of 'pending' is a compare-and-set, so exactly one verdict wins (a decision racing the
 * timeout, two admins on two processes). A decision records an `approval` change: the holding
 * process hears it on the change feed (LISTEN/NOTIFY across processes) and releases the call.
 */
import { randomUUID } from 'node:crypto';
import { recordChange } from '../events/index.js';
import type { Db, Queryable } from '../store/index.js';

export type Verdict = 'approved' | 'denied' | 'timeout' | 'cancelled';

export interface Ticket {
  id: string;
  caller: string;
  callerId: string;
  target: string;
  skill: string | null;
  method: string;
  path: string;
  createdAt: string;
  expiresAt: string;
}

/** What holds a ticket open: the caller's connection (its close cancels the ticket). */
export interface HoldSignal {
  readonly destroyed?: boolean;
  once(ev: 'close', fn: () => void): unknown;
  removeListener(ev: 'close', fn: () => void): unknown;
}

interface Held {
  ticket: Ticket;
  settle: (v: Verdict, by?: string) => void;
}

interface Row {
  id: string;
  caller: string;
  caller_id: string;
  target: string;
  skill: string | null;
  method: string;
  path: string;
  created_at: Date | string;
  expires_at: Date | string;
  status: string;
  decided_by: string | null;
}

const COLUMNS = 'id, caller, caller_id, target, skill, method, path, created_at, expires_at, status, decided_by';

const toTicket = (r: Row): Ticket => ({
  id: r.id,
  caller: r.caller,
  callerId: r.caller_id,
  target: r.target,
  skill: r.skill,
  method: r.method,
  path: r.path,
  createdAt: new Date(r.created_at).toISOString(),
  expiresAt: new Date(r.expires_at).toISOString(),
});

const FINAL = new Set<string>(['approved', 'denied', 'timeout', 'cancelled']);
/** Decided and expired tickets are kept this long (for a look in SQL), then deleted. */
const KEEP_MS = 24 * 3600_000;

export class Approvals {
  private readonly held = new Map<string, Held>();
  private sweptAt = 0;

  constructor(
    private readonly db: Db,
    private readonly opts: () => { approvalTimeoutMs: number; maxPendingApprovals: number },
    private readonly now: () => Date = () => new Date(),
    private readonly onDecided: (t: Ticket, v: Verdict, by: string | undefined) => void = () => undefined,
  ) {}

  /** Calls this process holds. */
  get pending(): number {
    return this.held.size;
  }

  full(): boolean {
    return this.held.size >= this.opts().maxPendingApprovals;
  }

  /**
   * Stores a ticket and holds the call; `verdict` resolves with the decision. `signal` closing
   * (the caller went away) cancels the ticket.
   */
  async hold(
    t: Omit<Ticket, 'id' | 'createdAt' | 'expiresAt'>,
    signal?: HoldSignal,
  ): Promise<{ ticket: Ticket; verdict: Promise<Verdict> }> {
    const now = this.now();
    const ms = this.opts().approvalTimeoutMs;
    const ticket: Ticket = {
      ...t,
      id: `apv_${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ms).toISOString(),
    };
    await this.db.query(
      `INSERT INTO gateway_approvals (id, caller, caller_id, target, skill, method, path, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        ticket.id,
        ticket.caller,
        ticket.callerId,
        ticket.target,
        ticket.skill,
        ticket.method,
        ticket.path,
        ticket.createdAt,
        ticket.expiresAt,
      ],
    );
    this.sweep(now);
    const verdict = new Promise<Verdict>((resolve) => {
      let done = false;
      const onClose = () => void this.close(ticket.id, 'cancelled');
      const timer = setTimeout(() => void this.close(ticket.id, 'timeout'), ms);
      const settle = (v: Verdict, by?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeListener('close', onClose);
        this.held.delete(ticket.id);
        this.onDecided(ticket, v, by);
        resolve(v);
      };
      this.held.set(ticket.id, { ticket, settle });
      signal?.once('close', onClose);
      if (signal?.destroyed) onClose();
    });
    return { ticket, verdict };
  }

  /** Tickets waiting for a decision, on every process sharing the store (oldest first). */
  async list(limit = 1000): Promise<Ticket[]> {
    const rows = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM gateway_approvals WHERE status = 'pending' AND expires_at > $1
       ORDER BY created_at, id LIMIT $2`,
      [this.now().toISOString(), limit],
    );
    return rows.map(toTicket);
  }

  /**
   * An admin's verdict, from any process. False when no such ticket is waiting (decided,
   * expired or unknown). `audit` writes the decision's audit entry in the same transaction.
   */
  async decide(
    id: string,
    verdict: 'approved' | 'denied',
    by: string,
    audit: (tx: Queryable, t: Ticket) => Promise<void> = async () => undefined,
  ): Promise<boolean> {
    const at = this.now().toISOString();
    const decided = await this.db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `UPDATE gateway_approvals SET status = $2, decided_by = $3, decided_at = $4
         WHERE id = $1 AND status = 'pending' AND expires_at > $4 RETURNING ${COLUMNS}`,
        [id, verdict, by, at],
      );
      if (!rows[0]) return false;
      await audit(tx, toTicket(rows[0]));
      await recordChange(tx, 'approval', id, `approval.${verdict}`);
      return true;
    });
    if (decided) this.held.get(id)?.settle(verdict, by);
    return decided;
  }

  /** The change feed says ticket `id` was decided (maybe by another process): release its call. */
  async changed(id: string): Promise<void> {
    if (!this.held.has(id)) return;
    const rows = await this.db.query<Row>(`SELECT ${COLUMNS} FROM gateway_approvals WHERE id = $1`, [id]);
    const r = rows[0];
    if (r && FINAL.has(r.status)) this.held.get(id)?.settle(r.status as Verdict, r.decided_by ?? undefined);
  }

  /** The caller went away (a data-plane worker says so). */
  cancel(id: string): Promise<void> {
    return this.close(id, 'cancelled');
  }

  async cancelAll(): Promise<void> {
    await Promise.all([...this.held.keys()].map((id) => this.close(id, 'cancelled')));
  }

  /**
   * Ends a held ticket with `v` unless a verdict got there first (then that verdict stands).
   * When the store cannot be reached the call still ends, with `v`.
   */
  private async close(id: string, v: 'timeout' | 'cancelled'): Promise<void> {
    const h = this.held.get(id);
    if (!h) return;
    try {
      const rows = await this.db.query<Row>(
        `UPDATE gateway_approvals SET status = $2, decided_at = $3 WHERE id = $1 AND status = 'pending'
         RETURNING ${COLUMNS}`,
        [id, v, this.now().toISOString()],
      );
      if (rows[0]) return h.settle(v);
      const cur = (await this.db.query<Row>(`SELECT ${COLUMNS} FROM gateway_approvals WHERE id = $1`, [id]))[0];
      h.settle(cur && FINAL.has(cur.status) ? (cur.status as Verdict) : v, cur?.decided_by ?? undefined);
    } catch {
      h.settle(v);
    }
  }

  /** At most hourly: deletes tickets that ended more than a day ago. */
  private sweep(now: Date): void {
    if (now.getTime() - this.sweptAt < 3600_000) return;
    this.sweptAt = now.getTime();
    void this.db
      .query('DELETE FROM gateway_approvals WHERE expires_at < $1', [new Date(now.getTime() - KEEP_MS).toISOString()])
      .catch(() => undefined);
  }
}
