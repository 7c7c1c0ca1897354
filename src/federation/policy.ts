/**
 * Export policy (send-filter by domain/tag, attribute redaction) and subscription matching
 * (AMSP 4.5.3, hybrid model). Pure.
 */
import type { AgentRecord } from './types.js';

export type RedactableField = 'description' | 'skills' | 'embedding';

export interface ExportPolicy {
  /** Domains (zones, no trailing dot; `*` = any) whose records may leave; empty = all. */
  allowDomains?: readonly string[];
  denyDomains?: readonly string[];
  /** A record passes when it has at least one allowed tag (empty = no tag filter). */
  allowTags?: readonly string[];
  denyTags?: readonly string[];
  redact?: readonly RedactableField[];
}

const dom = (d: string) => d.toLowerCase().replace(/\.$/, '');

function domainMatches(pattern: string, domain: string): boolean {
  const p = dom(pattern);
  const d = dom(domain);
  if (p === '*') return true;
  if (p.startsWith('*.')) return d.endsWith(p.slice(1)) || d === p.slice(2);
  return p === d;
}

/** Send-filter: may this record go out under this policy? Deny wins over allow. */
export function passesExport(rec: Pick<AgentRecord, 'domain' | 'tags'>, policy: ExportPolicy): boolean {
  if (policy.denyDomains?.some((p) => domainMatches(p, rec.domain))) return false;
  if (policy.allowDomains?.length && !policy.allowDomains.some((p) => domainMatches(p, rec.domain))) return false;
  const tags = rec.tags.map((t) => t.toLowerCase());
  if (policy.denyTags?.some((t) => tags.includes(t.toLowerCase()))) return false;
  if (policy.allowTags?.length && !policy.allowTags.some((t) => tags.includes(t.toLowerCase()))) return false;
  return true;
}

/** Redaction, applied by the originator before it signs (a transit gateway cannot redact). */
export function redact(rec: AgentRecord, fields: readonly RedactableField[] = []): AgentRecord {
  const out: AgentRecord = { ...rec };
  for (const f of fields) delete out[f];
  return out;
}

/**
 * Subscription topics: `*` (everything), an agent id or FQDN, `tag:<tag>`, `domain:<zone>`
 * (or `domain:*.<suffix>`), or `text:<word>` (a word of the name/description/skills).
 */
export function matchesTopic(rec: AgentRecord, topic: string): boolean {
  const t = topic.trim().toLowerCase();
  if (t === '*') return true;
  if (t.startsWith('tag:')) return rec.tags.some((x) => x.toLowerCase() === t.slice(4));
  if (t.startsWith('domain:')) return domainMatches(t.slice(7), rec.domain);
  if (t.startsWith('text:')) {
    const w = t.slice(5);
    const hay = [rec.name, rec.description ?? '', ...(rec.skills ?? []).flatMap((s) => [s.name, s.description ?? ''])]
      .join(' ')
      .toLowerCase();
    return w.length > 0 && hay.split(/[^a-z0-9]+/).includes(w);
  }
  return rec.id.toLowerCase() === t || rec.fqdn === t.replace(/\.$/, '');
}

export function matchesAny(rec: AgentRecord, topics: Iterable<string>): boolean {
  for (const t of topics) if (matchesTopic(rec, t)) return true;
  return false;
}

export function validTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= 253 && /^[\x21-\x7e]+$/.test(topic);
}
