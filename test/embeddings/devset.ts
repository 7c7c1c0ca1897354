import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { AgentDoc } from '../../embeddings/index.js';

/** One entry of shared/data/semantic-dev.json's `agents`. */
export interface DevAgent {
  label: string;
  name: string;
  description: string;
  skills: { id: string; name: string; description: string; tags?: string[] }[];
  domain: string;
}
export interface DevQuery {
  q: string;
  relevant: string[];
  kind: 'paraphrase' | 'colloquial' | 'multi-intent' | 'keyword' | 'non-english' | 'out-of-scope';
}
export interface DevSet {
  agents: DevAgent[];
  queries: DevQuery[];
}

/** A registry card (the body's `card` of POST /v1/agents). */
export interface DevCard {
  label: string;
  name: string;
  description: string;
  version: string;
  skills: { id: string; name: string; description: string; tags?: string[] }[];
  endpoints: { protocol: 'a2a'; url: string }[];
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** Where semantic-dev.json is: shared/ beside the repo (CI clones main with shared/ beside it). */
export function devSetPath(): string {
  const candidates = [join(HERE, '../../../shared/data/semantic-dev.json'), '/work/shared/data/semantic-dev.json'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`semantic-dev.json not found (looked in ${candidates.join(', ')})`);
  return found;
}

export function loadDevSet(path = devSetPath()): DevSet {
  return JSON.parse(readFileSync(path, 'utf8')) as DevSet;
}

/**
 * Dev entries as registry cards, per shared/data/README.md: label, name, description and skills
 * as they are; version 1.0.0; one a2a endpoint on a port per agent; the entry's topic (`domain`)
 * goes into each skill's tags (it is not a DNS zone).
 */
export function devSetCards(opts: { basePort?: number; topicTag?: boolean } = {}): DevCard[] {
  const base = opts.basePort ?? 9100;
  const topicTag = opts.topicTag ?? true;
  return loadDevSet().agents.map((a, i) => ({
    label: a.label,
    name: a.name,
    description: a.description,
    version: '1.0.0',
    skills: a.skills.map((s) => {
      const tags = [...(s.tags ?? [])];
      if (topicTag && !tags.includes(a.domain)) tags.push(a.domain);
      return { id: s.id, name: s.name, description: s.description, tags };
    }),
    endpoints: [{ protocol: 'a2a', url: `https://127.0.0.1:${base + i}/a2a` }],
  }));
}

/** The same cards as the index sees them (id = label here), in zone `zone`. */
export function devSetDocs(zone = 'agents.internal'): AgentDoc[] {
  return devSetCards().map((c) => ({
    id: c.label,
    fqdn: `${c.label}.${zone}`,
    name: c.name,
    description: c.description,
    skills: c.skills,
    protocols: c.endpoints.map((e) => e.protocol),
    domain: zone,
  }));
}

export interface QualityFigures {
  recallAt1: number;
  recallAt5: number;
  /** Fraction of each answerable query's relevant agents found in the top 5, averaged. */
  recallAt5Fraction: number;
  oosRejected: number;
  oosTotal: number;
  answerable: number;
}

/**
 * Scores ranked answers: R@1 = top hit relevant; R@5 = a relevant agent in the top 5 (an empty
 * answer to an answerable query counts as a miss); out-of-scope = answered with no result.
 */
export function scoreQuality(queries: DevQuery[], answers: string[][]): QualityFigures {
  let r1 = 0;
  let r5 = 0;
  let f5 = 0;
  let n = 0;
  let oos = 0;
  let oosRej = 0;
  queries.forEach((q, i) => {
    const a = answers[i] ?? [];
    if (q.relevant.length === 0) {
      oos++;
      if (a.length === 0) oosRej++;
      return;
    }
    n++;
    if (a[0] !== undefined && q.relevant.includes(a[0])) r1++;
    const top5 = a.slice(0, 5);
    if (top5.some((id) => q.relevant.includes(id))) r5++;
    f5 += q.relevant.filter((id) => top5.includes(id)).length / q.relevant.length;
  });
  return {
    recallAt1: r1 / n,
    recallAt5: r5 / n,
    recallAt5Fraction: f5 / n,
    oosRejected: oos === 0 ? 1 : oosRej / oos,
    oosTotal: oos,
    answerable: n,
  };
}
