/**
 * Source pruning (AMSP 4.5.2): a route learned from a neighbour is never sent back to it.
 * Also refuses to send to any gateway already on the PATH (it would drop it as a loop anyway).
 * Pure.
 */
import { normUri } from './path.js';

export function mayExportTo(target: string, learnedFrom: string | null, path: readonly string[]): boolean {
  const t = normUri(target);
  if (learnedFrom !== null && normUri(learnedFrom) === t) return false;
  return !path.some((p) => normUri(p) === t);
}
