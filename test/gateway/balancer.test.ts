import { describe, expect, it } from 'vitest';
import { Balancer, type Replica } from '../../src/gateway/index.js';

const specs = (n: number) => Array.from({ length: n }, (_, i) => ({ url: `http://10.0.0.${i + 1}:80` }));
const count = (b: Balancer, n: number, key?: (i: number) => string) => {
  const c = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = b.pick(0, key?.(i))!;
    c.set(r.url, (c.get(r.url) ?? 0) + 1);
  }
  return c;
};

describe('round-robin', () => {
  it('spreads evenly', () => {
    const c = count(new Balancer(specs(3)), 300);
    expect([...c.values()]).toEqual([100, 100, 100]);
  });
  it('honours weights smoothly', () => {
    const b = new Balancer([
      { url: 'a', weight: 3 },
      { url: 'b', weight: 1 },
    ]);
    const seq = Array.from({ length: 8 }, () => b.pick(0)!.url);
    expect(seq.filter((u) => u === 'a')).toHaveLength(6);
    expect(seq.slice(0, 4).join('')).not.toBe('aaab'); // interleaved, not bunched
  });
  it('uses the lowest priority group while it has a healthy replica', () => {
    const b = new Balancer(
      [
        { url: 'backup', priority: 20 },
        { url: 'main', priority: 10 },
      ],
      'round-robin',
      { maxFailures: 1, ejectMs: 1000, maxEjectMs: 1000 },
    );
    expect(b.pick(0)!.url).toBe('main');
    const main = b.replicas.find((r) => r.url === 'main')!;
    b.start(main);
    b.done(main, false, 0);
    expect(b.pick(10)!.url).toBe('backup');
    expect(b.pick(2000)!.url).toBe('main');
  });
});

describe('least-connections', () => {
  it('prefers the replica with fewer requests in flight', () => {
    const b = new Balancer(specs(3), 'least-connections');
    const [a, bb] = b.replicas as Replica[];
    b.start(a!);
    b.start(a!);
    b.start(bb!);
    expect(b.pick(0)!.url).toBe('http://10.0.0.3:80');
    b.done(a!, true, 0);
    b.done(a!, true, 0);
    const picks = new Set([b.pick(0)!.url, b.pick(0)!.url]);
    expect(picks).toEqual(new Set(['http://10.0.0.1:80', 'http://10.0.0.3:80']));
  });
});

describe('consistent-hash', () => {
  it('keeps a key on one replica, spreads keys, and moves few keys when one replica goes', () => {
    const b = new Balancer(specs(4), 'consistent-hash', { maxFailures: 1, ejectMs: 60_000, maxEjectMs: 60_000 });
    const before = new Map<string, string>();
    for (let i = 0; i < 2000; i++) before.set(`s${i}`, b.pick(0, `s${i}`)!.url);
    for (let i = 0; i < 50; i++) expect(b.pick(0, `s${i}`)!.url).toBe(before.get(`s${i}`));
    const per = new Map<string, number>();
    for (const u of before.values()) per.set(u, (per.get(u) ?? 0) + 1);
    for (const v of per.values()) expect(v).toBeGreaterThan(250);
    const gone = b.replicas[0]!;
    b.start(gone);
    b.done(gone, false, 0);
    let moved = 0;
    for (const [k, u] of before) {
      const now = b.pick(1, k)!.url;
      expect(now).not.toBe(gone.url);
      if (u !== gone.url && now !== u) moved++;
    }
    expect(moved).toBe(0); // only the ejected replica's keys move
  });
});

describe('passive health', () => {
  it('ejects after maxFailures, doubles the ejection, brings the replica back, and panics when all are out', () => {
    const ejected: string[] = [];
    const b = new Balancer(specs(2), 'round-robin', { maxFailures: 2, ejectMs: 100, maxEjectMs: 150 }, (r) =>
      ejected.push(r.url),
    );
    const bad = b.replicas[0]!;
    for (let i = 0; i < 2; i++) {
      b.start(bad);
      b.done(bad, false, 0);
    }
    expect(ejected).toEqual([bad.url]);
    expect(bad.ejectedUntil).toBe(100);
    expect(count(b, 10).get(bad.url)).toBeUndefined();
    expect(b.pick(100)).toBeDefined();
    for (let i = 0; i < 2; i++) {
      b.start(bad);
      b.done(bad, false, 100);
    }
    expect(bad.ejectedUntil).toBe(250); // 100 + min(150, 200)
    b.start(bad);
    b.done(bad, true, 300);
    expect(bad.ejections).toBe(0);
    // all ejected: still answers with the oldest ejection
    const other = b.replicas[1]!;
    for (let i = 0; i < 2; i++) {
      b.start(other);
      b.done(other, false, 300);
    }
    for (let i = 0; i < 2; i++) {
      b.start(bad);
      b.done(bad, false, 301);
    }
    expect(b.pick(302)!.url).toBe(other.url);
  });
  it('a single replica is always tried (unless already tried)', () => {
    const b = new Balancer(specs(1));
    const r = b.replicas[0]!;
    expect(b.pick(0, undefined, new Set([r]))).toBeUndefined();
    expect(b.pick(0)).toBe(r);
  });
});
