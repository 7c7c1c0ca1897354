/** Per-caller token buckets: `ratePerMinute` sustained, `burst` at once. Pure apart from the clock. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly limits: () => { ratePerMinute: number; rateBurst: number }) {}

  /** 0 when allowed; otherwise the seconds to wait (for Retry-After). */
  take(key: string, nowMs: number): number {
    const { ratePerMinute, rateBurst } = this.limits();
    const perMs = ratePerMinute / 60_000;
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size > 100_000) this.prune(nowMs, perMs, rateBurst);
      b = { tokens: rateBurst, at: nowMs };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(rateBurst, b.tokens + (nowMs - b.at) * perMs);
      b.at = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }

  private prune(nowMs: number, perMs: number, burst: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (nowMs - b.at) * perMs >= burst) this.buckets.delete(k);
  }
}
