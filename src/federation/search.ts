/**
 * Resolve across domains (first slice): a lexical match of the query against remote records in
 * the RIB. Scores are the share of query words found in the record's name, description, skills
 * and tags, so they are comparable to nothing but each other; the lead merges them after local
 * hits. Pure.
 */
import type { ResolveResult } from '../../ans/index.js';
import type { Route } from './rib.js';
import { gatewayUrl } from './local.js';

/** A resolve result for a remote agent: always reached through a next-hop gateway. */
export type RemoteHit = ResolveResult & { via: string };

const STOP = new Set([
  'a',
  'an',
  'the',
  'and',
  'or',
  'of',
  'to',
  'for',
  'in',
  'on',
  'at',
  'with',
  'my',
  'me',
  'i',
  'is',
  'about',
  'agent',
]);

export function words(text: string): string[] {
  return [
    ...new Set(
      text
        .toLowerCase()
        .split(/[^a-z0-9]+/)
        .filter((w) => w.length > 1 && !STOP.has(w)),
    ),
  ];
}

export function searchRoutes(
  routes: Iterable<Route>,
  query: string,
  opts: { k: number; gatewayUri: string; domain?: string; protocol?: string; minScore?: number },
): RemoteHit[] {
  const q = words(query);
  if (q.length === 0) return [];
  const hits: RemoteHit[] = [];
  for (const r of routes) {
    const rec = r.record;
    if (opts.domain && rec.domain !== opts.domain.toLowerCase().replace(/\.$/, '')) continue;
    if (opts.protocol && !rec.protocols.includes(opts.protocol)) continue;
    const hay = new Set(
      words(
        [
          rec.fqdn,
          rec.name,
          rec.description ?? '',
          ...rec.tags,
          ...(rec.skills ?? []).flatMap((s) => [s.name, s.description ?? '']),
        ].join(' '),
      ),
    );
    const score = q.filter((w) => hay.has(w)).length / q.length;
    if (score < (opts.minScore ?? 0.34)) continue;
    const protocols = opts.protocol ? [opts.protocol] : rec.protocols;
    hits.push({
      id: rec.id,
      fqdn: rec.fqdn,
      name: rec.name,
      score: Math.round(score * 1e4) / 1e4,
      endpoints: protocols.map((protocol) => ({ protocol, url: gatewayUrl(opts.gatewayUri, rec.fqdn) })),
      domain: rec.domain,
      via: r.peer,
    });
  }
  return hits.sort((a, b) => b.score - a.score || (a.fqdn < b.fqdn ? -1 : 1)).slice(0, opts.k);
}
