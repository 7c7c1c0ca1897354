/**
 * Who may call whom, pure. A rule is `{caller, target, effect}`; a pattern is an FQDN, `*.<domain>`
 * or `*`. The most specific matching rule wins; on a tie, deny wins. With no matching rule, agents
 * of this zone may call each other and anything else is denied.
 *
 * Specificity of a rule = specificity(caller) + specificity(target), where an exact FQDN counts
 * 1000 and `*.<domain>` counts the number of labels in <domain> (so `*.home.internal` beats
 * `*.internal`) and `*` counts 0. An exact caller with a wildcard target and a wildcard caller
 * with an exact target tie, and deny wins.
 */
import { inZone, validName } from './route.js';

export type Effect = 'allow' | 'deny';

export interface PolicyRule {
  id: string;
  caller: string;
  target: string;
  effect: Effect;
}

export interface Decision {
  effect: Effect;
  /** The deciding rule; undefined when the default decided. */
  rule: PolicyRule | undefined;
  why: string;
}

/** Lower case, no trailing dot; returns undefined for something that is not a pattern. */
export function normalisePattern(p: string): string | undefined {
  const t = p.trim().toLowerCase();
  if (t === '*.') return undefined;
  const s = t.replace(/\.$/, '');
  if (s === '*') return s;
  if (s.startsWith('*.')) return validName(s.slice(2)) ? s : undefined;
  return validName(s) ? s : undefined;
}

export function specificity(pattern: string): number {
  if (pattern === '*') return 0;
  if (pattern.startsWith('*.')) return pattern.split('.').length - 1;
  return 1000;
}

export function matches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return inZone(name, pattern.slice(2));
  return pattern === name;
}

/** A compiled rule set; `decide` is on the hot path, so rules are pre-normalised and sorted. */
export class PolicySet {
  private readonly rules: (PolicyRule & { score: number })[];
  private readonly cache = new Map<string, Decision>();

  constructor(
    rules: readonly PolicyRule[],
    private readonly zone: string, // normalised
  ) {
    this.rules = rules
      .map((r) => ({ ...r, score: specificity(r.caller) + specificity(r.target) }))
      // Most specific first; deny before allow at equal specificity.
      .sort((a, b) => b.score - a.score || (a.effect === b.effect ? 0 : a.effect === 'deny' ? -1 : 1));
  }

  get size(): number {
    return this.rules.length;
  }

  list(): PolicyRule[] {
    return this.rules.map(({ id, caller, target, effect }) => ({ id, caller, target, effect }));
  }

  /** Both names normalised (lower case, no trailing dot). */
  decide(caller: string, target: string): Decision {
    const key = `${caller} ${target}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const d = this.compute(caller, target);
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(key, d);
    return d;
  }

  private compute(caller: string, target: string): Decision {
    for (const r of this.rules) {
      if (matches(r.caller, caller) && matches(r.target, target)) {
        const { id, effect } = r;
        return {
          effect,
          rule: { id, caller: r.caller, target: r.target, effect },
          why: `policy ${id}: ${r.caller} -> ${r.target} ${effect}`,
        };
      }
    }
    if (inZone(caller, this.zone) && inZone(target, this.zone)) {
      return { effect: 'allow', rule: undefined, why: 'default: agents of this zone may call each other' };
    }
    return { effect: 'deny', rule: undefined, why: 'default: calls across zones need a policy' };
  }
}
