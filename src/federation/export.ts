/**
 * Which PATH (if any) a record goes to a neighbour with. Pure: the hierarchy rules of AMSP
 * 4.5.1/4.5.2 combined with split horizon, the export policy and subscriptions (hybrid model).
 *
 * - Own agents go to every Level-2 neighbour; to a Level-1 neighbour only when it subscribed.
 * - A Level-1 never re-advertises what it learned.
 * - A Level-2 re-advertises its best route to Level-2 neighbours (split horizon) and to Level-1
 *   neighbours that subscribed to it.
 */
import { passesExport, matchesAny, type ExportPolicy } from './policy.js';
import { prepend } from './path.js';
import { mayExportTo } from './split-horizon.js';
import type { AgentRecord, Role } from './types.js';

export interface ExportTarget {
  uri: string;
  role: Role;
  topics: ReadonlySet<string>;
}

export type ExportSource = { kind: 'local' } | { kind: 'learned'; peer: string; path: readonly string[] };

export function exportPath(
  self: { uri: string; role: Role },
  target: ExportTarget,
  record: AgentRecord,
  source: ExportSource,
  policy: ExportPolicy = {},
): string[] | null {
  if (!passesExport(record, policy)) return null;
  const wanted = target.role === 'l2' || matchesAny(record, target.topics);
  if (!wanted) return null;
  if (source.kind === 'local') return prepend(self.uri, []);
  if (self.role === 'l1') return null;
  if (!mayExportTo(target.uri, source.peer, source.path)) return null;
  return prepend(self.uri, source.path);
}
