/**
 * RFC 1035 master-file text of the zone ($ORIGIN, $TTL, apex first, then every agent's records).
 * `kzonecheck -o <zone> <file>` accepts it.
 */
import { rrText } from './zone.js';
import type { RR } from './wire.js';

export function renderMasterFile(zone: string, apex: readonly RR[], agents: Iterable<readonly RR[]>): string {
  const lines: string[] = [`$ORIGIN ${zone}.`, `$TTL ${apex[0]?.ttl ?? 300}`, '; apex'];
  for (const rr of apex) lines.push(rrText(rr));
  for (const rrs of agents) {
    if (rrs.length === 0) continue;
    lines.push(`; ${rrs[0]!.name}`);
    for (const rr of rrs) lines.push(rrText(rr));
  }
  return lines.join('\n') + '\n';
}
