/**
 * PATH attribute rules (AMSP 4.5.2, docs/amsp.md "PATH"). Pure: no I/O, no clock.
 * Gateway URIs compare after normalisation (lower-case scheme/host, no trailing slash).
 */

export function normUri(uri: string): string {
  try {
    const u = new URL(uri);
    return `${u.protocol}//${u.host}${u.pathname}`.replace(/\/+$/, '').toLowerCase();
  } catch {
    return uri.trim().replace(/\/+$/, '').toLowerCase();
  }
}

/** Rule a): the sender prepends its own URI. */
export function prepend(self: string, path: readonly string[]): string[] {
  return [normUri(self), ...path.map(normUri)];
}

/** Rule b): an update whose PATH already holds our own URI is a loop and is discarded. */
export function hasLoop(self: string, path: readonly string[]): boolean {
  const me = normUri(self);
  return path.some((p) => normUri(p) === me);
}

/** A PATH is well-formed when non-empty, without repeats, and within the length limit. */
export function validPath(path: readonly string[], maxLength = 32): boolean {
  if (path.length === 0 || path.length > maxLength) return false;
  const n = path.map(normUri);
  return new Set(n).size === n.length;
}

export interface PathCandidate {
  path: readonly string[];
  /** The neighbour the route was learned from (PATH[0] on a well-behaved peer). */
  peer: string;
}

/**
 * Rule c): shortest PATH wins. Ties break deterministically on the neighbour URI, then on the
 * whole PATH (joined), both in code-point order, so every gateway picks the same way.
 * Negative when `a` is better.
 */
export function comparePaths(a: PathCandidate, b: PathCandidate): number {
  if (a.path.length !== b.path.length) return a.path.length - b.path.length;
  const pa = normUri(a.peer);
  const pb = normUri(b.peer);
  if (pa !== pb) return pa < pb ? -1 : 1;
  const ja = a.path.map(normUri).join(' ');
  const jb = b.path.map(normUri).join(' ');
  return ja < jb ? -1 : ja > jb ? 1 : 0;
}

export function bestOf<T extends PathCandidate>(candidates: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const c of candidates) if (best === undefined || comparePaths(c, best) < 0) best = c;
  return best;
}
