import type { AgentDoc } from './types.js';

/** Which texts of a card become vectors (each one a "part"; the agent keeps its best parts). */
export type PartsMode = 'card' | 'card+description' | 'card+sentences' | 'card+sentences+skills';

/**
 * What gets embedded for one agent. Part 0 is always the whole card (name, description, every
 * skill's name, description and tags). With 'card+sentences' each sentence of the description is
 * a part too; with 'card+sentences+skills' each skill (name, description, tags) as well. USE-lite
 * averages over long inputs, so a short query about one thing the agent does matches the one
 * sentence that says it better than the whole card; the card vector keeps the overall topic.
 * With 'card+description' the description alone is the second part (a view without the skill
 * lists, which dominate long cards). Texts are lower-cased when `lowercase` (USE-lite's
 * vocabulary is cased; see README numbers).
 */
export function docParts(doc: AgentDoc, mode: PartsMode = 'card+sentences+skills', lowercase = true): string[] {
  const skills = doc.skills.map((s) => skillText(s));
  const card = [`${doc.name}.`, doc.description, ...skills].filter((s) => s.length > 0).join(' ');
  const parts = [card];
  if (mode === 'card+description') parts.push(doc.description);
  if (mode === 'card+sentences' || mode === 'card+sentences+skills') parts.push(...sentences(doc.description));
  if (mode === 'card+sentences+skills') parts.push(...skills);
  const out = parts.map((p) => p.trim()).filter((p) => p.length > 0);
  return lowercase ? out.map((p) => p.toLowerCase()) : out;
}

function skillText(s: AgentDoc['skills'][number]): string {
  const tags = s.tags && s.tags.length > 0 ? ` (${s.tags.join(', ')})` : '';
  return `${s.name}. ${s.description}${tags}`;
}

/** Splits prose into sentences (a full stop, ! or ? followed by space). */
export function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+/u)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The text the lexical (BM25) side indexes: the card text with tags. */
export function lexicalText(doc: AgentDoc): string {
  return docParts(doc, 'card', false)[0]!;
}

/** Skill tags (lower case) of a card, for the skillTag filter. */
export function skillTags(doc: AgentDoc): string[] {
  return [...new Set(doc.skills.flatMap((s) => (s.tags ?? []).map((t) => t.toLowerCase())))];
}
