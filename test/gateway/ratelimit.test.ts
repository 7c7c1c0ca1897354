import { describe, expect, it } from 'vitest';
import { LeasedRate, RateLimiter } from '../../src/gateway/ratelimit.js';

describe('rate limits shared by processes', () => {
  it('let two lessees of one bucket spend its burst once, and give back what they hold', async () => {
    let now = 1_000_000;
    const owner = new RateLimiter(() => ({ ratePerMinute: 60, rateBurst: 10 }));
    let asks = 0;
    const lessee = () =>
      new LeasedRate(
        async (key) => {
          asks++;
          return owner.lease(key, 3, now);
        },
        (key, n) => owner.giveBack(key, n, now),
        () => now,
      );
    const a = lessee();
    const b = lessee();
    const waits = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).take('caller', now)));
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    expect(waits.filter((w) => w > 0)).toHaveLength(20);
    expect(asks).toBeLessThan(30); // leases, not a question per call
    // A second later one token has refilled; a and b give back nothing (they spent all).
    now += 1000;
    a.expire(now);
    b.expire(now);
    expect(await a.take('caller', now)).toBe(0);
    expect(await b.take('caller', now)).toBeGreaterThan(0);
    a.close();
    b.close();
  });

  it('return unused leased tokens to the owner', async () => {
    let now = 0;
    const owner = new RateLimiter(() => ({ ratePerMinute: 1, rateBurst: 4 }));
    const a = new LeasedRate(
      async (key) => owner.lease(key, 4, now),
      (key, n) => owner.giveBack(key, n, now),
      () => now,
    );
    expect(await a.take('c', now)).toBe(0); // a holds the other 3
    expect(owner.take('c', now)).toBeGreaterThan(0);
    now += 1000;
    a.expire(now);
    expect([owner.take('c', now), owner.take('c', now), owner.take('c', now)]).toEqual([0, 0, 0]);
    a.close();
  });
});
