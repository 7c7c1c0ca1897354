/**
 * Per-caller token buckets: `ratePerMinute` sustained, `burst` at once. The main process owns
 * the buckets (`RateLimiter`); data-plane workers lease tokens from it in small batches
 * (`LeasedRate`), so a caller spread over several processes still gets its rate once.
 */

/** What a lease request gets: `granted` tokens, or none and the seconds to wait. */
export interface Lease {
  granted: number;
  wait: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly limits: () => { ratePerMinute: number; rateBurst: number }) {}

  /** 0 when allowed; otherwise the seconds to wait (for Retry-After). */
  take(key: string, nowMs: number): number {
    return this.lease(key, 1, nowMs).wait;
  }

  /** Takes up to `want` whole tokens at once (a worker's lease); none granted means wait. */
  lease(key: string, want: number, nowMs: number): Lease {
    const { ratePerMinute, rateBurst } = this.limits();
    const perMs = ratePerMinute / 60_000;
    const b = this.bucket(key, nowMs, perMs, rateBurst);
    const granted = Math.min(want, Math.floor(b.tokens));
    if (granted >= 1) {
      b.tokens -= granted;
      return { granted, wait: 0 };
    }
    return { granted: 0, wait: Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000)) };
  }

  /** Tokens a worker leased and did not use come back (never above the burst). */
  giveBack(key: string, n: number, nowMs: number): void {
    const { ratePerMinute, rateBurst } = this.limits();
    const b = this.bucket(key, nowMs, ratePerMinute / 60_000, rateBurst);
    b.tokens = Math.min(rateBurst, b.tokens + n);
  }

  private bucket(key: string, nowMs: number, perMs: number, burst: number): { tokens: number; at: number } {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size > 100_000) this.prune(nowMs, perMs, burst);
      b = { tokens: burst, at: nowMs };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + (nowMs - b.at) * perMs);
      b.at = nowMs;
    }
    return b;
  }

  private prune(nowMs: number, perMs: number, burst: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (nowMs - b.at) * perMs >= burst) this.buckets.delete(k);
  }
}

interface Held {
  tokens: number;
  at: number;
  /** The last answer's wait (0 when it granted tokens). */
  wait: number;
  pending: Promise<void> | undefined;
}

/**
 * A data-plane worker's side of the buckets: tokens leased from the main process, spent
 * locally until they run out (the usual call asks nothing), given back when unused for
 * `ttlMs`. Concurrent calls of one caller share one lease request.
 */
export class LeasedRate {
  private readonly held = new Map<string, Held>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ask: (key: string) => Promise<Lease>,
    private readonly giveBack: (key: string, n: number) => void,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = 1000,
  ) {
    this.timer = setInterval(() => this.expire(this.now()), ttlMs);
    this.timer.unref();
  }

  /** 0 when allowed, else the seconds to wait; a promise only when a lease must be asked for. */
  take(key: string, nowMs: number): number | Promise<number> {
    const h = this.held.get(key);
    if (h && h.tokens >= 1 && nowMs - h.at < this.ttlMs) {
      h.tokens--;
      return 0;
    }
    return this.refill(key);
  }

  private async refill(key: string): Promise<number> {
    for (;;) {
      let h = this.held.get(key);
      if (!h) {
        h = { tokens: 0, at: 0, wait: 0, pending: undefined };
        this.held.set(key, h);
      }
      if (h.tokens >= 1 && this.now() - h.at < this.ttlMs) {
        h.tokens--;
        return 0;
      }
      if (!h.pending) {
        const mine = h;
        this.release(key, mine); // stale tokens go back before new ones come
        mine.pending = this.ask(key).then(
          (l) => {
            mine.tokens += l.granted;
            mine.at = this.now();
            mine.wait = l.wait;
            mine.pending = undefined;
          },
          () => {
            mine.wait = 1;
            mine.pending = undefined;
          },
        );
      }
      await h.pending;
      if (h.tokens >= 1) {
        h.tokens--;
        return 0;
      }
      // Refused: every waiter gets the wait. Granted but spent by the others: ask again.
      if (h.wait > 0) return h.wait;
    }
  }

  private release(key: string, h: Held): void {
    const n = Math.floor(h.tokens);
    h.tokens = 0;
    if (n > 0) this.giveBack(key, n);
  }

  /** Leases unused for `ttlMs` go back, so another process can spend them. */
  expire(nowMs: number): void {
    for (const [key, h] of this.held)
      if (!h.pending && nowMs - h.at >= this.ttlMs) {
        this.release(key, h);
        this.held.delete(key);
      }
  }

  close(): void {
    clearInterval(this.timer);
    for (const [key, h] of this.held) this.release(key, h);
    this.held.clear();
  }
}
