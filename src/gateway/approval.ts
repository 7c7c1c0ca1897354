/**
 * Human in the loop: a call to a skill marked `requireHumanApproval` is held until an admin
 * approves (forwarded) or denies (403) it, or the timeout passes (504). Tickets live in the
 * process that holds the call (the caller's connection is there too).
 */
import { randomUUID } from 'node:crypto';

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

interface Held {
  ticket: Ticket;
  settle: (v: Verdict, by?: string) => void;
}

export class Approvals {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly opts: () => { approvalTimeoutMs: number; maxPendingApprovals: number },
    private readonly now: () => Date = () => new Date(),
    private readonly onDecided: (t: Ticket, v: Verdict, by: string | undefined) => void = () => undefined,
  ) {}

  get pending(): number {
    return this.held.size;
  }

  full(): boolean {
    return this.held.size >= this.opts().maxPendingApprovals;
  }

  /**
   * Holds a call; resolves with the verdict. `signal` cancels (the caller went away).
   * `onTicket` gets the ticket as soon as it exists (to tell the caller its id).
   */
  hold(
    t: Omit<Ticket, 'id' | 'createdAt' | 'expiresAt'>,
    signal?: { once(ev: 'close', fn: () => void): unknown; removeListener(ev: 'close', fn: () => void): unknown },
  ): { ticket: Ticket; verdict: Promise<Verdict> } {
    const now = this.now();
    const ms = this.opts().approvalTimeoutMs;
    const ticket: Ticket = {
      ...t,
      id: `apv_${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ms).toISOString(),
    };
    const verdict = new Promise<Verdict>((resolve) => {
      let done = false;
      const onClose = () => settle('cancelled');
      const timer = setTimeout(() => settle('timeout'), ms);
      const settle = (v: Verdict, by?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeListener('close', onClose);
        this.held.delete(ticket.id);
        this.onDecided(ticket, v, by);
        resolve(v);
      };
      signal?.once('close', onClose);
      this.held.set(ticket.id, { ticket, settle });
    });
    return { ticket, verdict };
  }

  list(): Ticket[] {
    return [...this.held.values()].map((h) => h.ticket);
  }

  /** Returns false when no such ticket is waiting (decided, timed out or unknown). */
  decide(id: string, verdict: 'approved' | 'denied', by: string): boolean {
    const h = this.held.get(id);
    if (!h) return false;
    h.settle(verdict, by);
    return true;
  }

  /** The caller went away (a data-plane worker says so). */
  cancel(id: string): void {
    this.held.get(id)?.settle('cancelled');
  }

  cancelAll(): void {
    for (const h of [...this.held.values()]) h.settle('cancelled');
  }
}
