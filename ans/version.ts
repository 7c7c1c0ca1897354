/** Semantic-version ordering and the card compatibility rule. */
import type { AgentCard } from './card.js';

interface Semver {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
}

export function parseSemver(v: string): Semver {
  const [core = '', pre] = v.split('+')[0]!.split(/-(.*)/s, 2);
  const [major = 0, minor = 0, patch = 0] = core.split('.').map(Number);
  return { major, minor, patch, pre: pre ? pre.split('.') : [] };
}

/** Negative, zero or positive as `a` sorts before, with or after `b` (SemVer 2.0.0 section 11). */
export function compareSemver(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  for (const k of ['major', 'minor', 'patch'] as const) if (x[k] !== y[k]) return x[k] - y[k];
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) - Number(q);
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

/**
 * What a new card takes away from callers of the old one. A removed skill or a removed
 * endpoint breaks them, so such a card needs a new major version.
 */
export function incompatibilities(before: AgentCard, after: AgentCard): string[] {
  const out: string[] = [];
  const skills = new Set(after.skills.map((s) => s.id));
  for (const s of before.skills) if (!skills.has(s.id)) out.push(`skill '${s.id}' removed`);
  const eps = new Set(after.endpoints.map((e) => `${e.protocol} ${e.url}`));
  for (const e of before.endpoints)
    if (!eps.has(`${e.protocol} ${e.url}`)) out.push(`endpoint ${e.protocol} ${e.url} removed`);
  return out;
}
