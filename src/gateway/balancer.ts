/**
 * Replica selection for one agent's endpoints of one protocol, with passive health checks.
 * Pure apart from the clock passed in: no I/O.
 *
 * - SRV semantics: only the lowest `priority` group that has a healthy replica is used.
 * - round-robin: smooth weighted round-robin (nginx's), `weight` from the card (default 1).
 * - least-connections: fewest in-flight requests, ties broken round-robin.
 * - consistent-hash: a ring of virtual nodes keyed by a session key (e.g. Mcp-Session-Id or the
 *   caller), so one session keeps its replica while the set is stable; without a key, round-robin.
 * - Passive health: `maxFailures` consecutive failures eject a replica for `ejectMs`, doubling
 *   with each ejection up to `maxEjectMs`; once the time is up it takes traffic again, and a
 *   success resets it. If every replica is ejected, the one ejected longest ago is tried anyway.
 */

export type Strategy = 'round-robin' | 'least-connections' | 'consistent-hash';
export const STRATEGIES: readonly Strategy[] = ['round-robin', 'least-connections', 'consistent-hash'];

export interface ReplicaSpec {
  url: string;
  priority?: number | undefined;
  weight?: number | undefined;
}

export interface HealthOptions {
  maxFailures: number;
  ejectMs: number;
  maxEjectMs: number;
}

export const DEFAULT_HEALTH: HealthOptions = { maxFailures: 3, ejectMs: 5_000, maxEjectMs: 60_000 };

export class Replica {
  readonly url: string;
  readonly priority: number;
  readonly weight: number;
  inFlight = 0;
  failures = 0;
  ejections = 0;
  ejectedUntil = 0;
  currentWeight = 0;

  constructor(spec: ReplicaSpec) {
    this.url = spec.url;
    this.priority = spec.priority ?? 0;
    this.weight = Math.max(1, spec.weight ?? 1);
  }

  healthy(now: number): boolean {
    return this.ejectedUntil <= now;
  }
}

/** FNV-1a, 32 bit: cheap and well spread for ring positions. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (murmur3 fmix32) so nearby keys land far apart.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const VNODES = 64;

export class Balancer {
  readonly replicas: readonly Replica[];
  private rr = 0;
  private ring: { at: number; r: Replica }[] = [];

  constructor(
    specs: readonly ReplicaSpec[],
    public strategy: Strategy = 'round-robin',
    private readonly health: HealthOptions = DEFAULT_HEALTH,
    private readonly onEject: (r: Replica) => void = () => undefined,
  ) {
    this.replicas = specs.map((s) => new Replica(s));
    for (const r of this.replicas) {
      for (let v = 0; v < VNODES * r.weight && v < 1024; v++) this.ring.push({ at: hash32(`${r.url}#${v}`), r });
    }
    this.ring.sort((a, b) => a.at - b.at);
  }

  /** Picks a replica; `exclude` holds replicas already tried for this request. */
  pick(now: number, key?: string, exclude?: ReadonlySet<Replica>): Replica | undefined {
    const all = this.replicas;
    if (all.length === 1) {
      const only = all[0]!;
      return exclude?.has(only) ? undefined : only;
    }
    let candidates = this.usable(now, exclude);
    if (candidates.length === 0) {
      // Panic mode: everything is ejected; try the one whose ejection is oldest.
      const rest = all.filter((r) => !exclude?.has(r));
      if (rest.length === 0) return undefined;
      return rest.reduce((a, b) => (a.ejectedUntil <= b.ejectedUntil ? a : b));
    }
    const top = Math.min(...candidates.map((r) => r.priority));
    candidates = candidates.filter((r) => r.priority === top);
    if (candidates.length === 1) return candidates[0];
    switch (this.strategy) {
      case 'least-connections': {
        let min = Infinity;
        for (const r of candidates) min = Math.min(min, r.inFlight / r.weight);
        const least = candidates.filter((r) => r.inFlight / r.weight === min);
        return least[this.rr++ % least.length];
      }
      case 'consistent-hash':
        if (key !== undefined) return this.onRing(hash32(key), new Set(candidates));
        return this.smoothWeighted(candidates);
      default:
        return this.smoothWeighted(candidates);
    }
  }

  private usable(now: number, exclude?: ReadonlySet<Replica>): Replica[] {
    const out: Replica[] = [];
    for (const r of this.replicas) if (r.healthy(now) && !exclude?.has(r)) out.push(r);
    return out;
  }

  private smoothWeighted(c: readonly Replica[]): Replica {
    let total = 0;
    let best = c[0]!;
    for (const r of c) {
      r.currentWeight += r.weight;
      total += r.weight;
      if (r.currentWeight > best.currentWeight) best = r;
    }
    best.currentWeight -= total;
    return best;
  }

  private onRing(h: number, allowed: ReadonlySet<Replica>): Replica {
    const ring = this.ring;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]!.at < h) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < ring.length; i++) {
      const n = ring[(lo + i) % ring.length]!;
      if (allowed.has(n.r)) return n.r;
    }
    return [...allowed][0]!;
  }

  /** Call when a request to `r` starts; returns the matching `done`. */
  start(r: Replica): void {
    r.inFlight++;
  }

  /** Records the outcome: `ok` false for connect errors, resets, timeouts and 502/503/504. */
  done(r: Replica, ok: boolean, now: number): void {
    r.inFlight = Math.max(0, r.inFlight - 1);
    if (ok) {
      r.failures = 0;
      if (r.ejectedUntil !== 0 && r.ejectedUntil <= now) {
        r.ejections = 0;
        r.ejectedUntil = 0;
      }
      return;
    }
    r.failures++;
    if (r.failures >= this.health.maxFailures && r.healthy(now)) {
      r.ejectedUntil = now + Math.min(this.health.maxEjectMs, this.health.ejectMs * 2 ** r.ejections);
      r.ejections++;
      r.failures = 0;
      this.onEject(r);
    }
  }
}
