/**
 * Query and card-text hygiene. Generic rules only: a length cap, invisible and bidirectional
 * Unicode removed (after NFKC), and three classes of prompt injection refused — instruction
 * overrides, chat role markers, and encoded payloads. Used on resolve queries and, at
 * registration, on card text; answers always carry card text as data, never as instructions.
 */
export type ScreenResult = { ok: true; text: string } | { ok: false; reason: string };

export const DEFAULT_MAX_LENGTH = 1000;

// Format characters (Cf: zero-width, bidi embeddings/overrides/isolates, BOM, tags, soft hyphen)
// and control characters other than tab and newline.
const INVISIBLE = /[\p{Cf}\u180E\uFFF9-\uFFFB]|[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/gu;

interface Rule {
  kind: string;
  re: RegExp;
}

const RULES: Rule[] = [
  // Instruction overrides: "ignore/disregard/forget ... previous/above ... instructions".
  {
    kind: 'an instruction override',
    re: /\b(ignore|disregard|forget|override|bypass|skip)\b[^.\n]{0,40}\b(previous|prior|above|earlier|preceding|all|any|your|the|system)\b[^.\n]{0,30}\b(instructions?|prompts?|rules?|directions?|guidelines?|context|messages?|polic(?:y|ies))\b/iu,
  },
  {
    kind: 'an instruction override',
    re: /\b(reveal|print|show|repeat|leak)\b[^.\n]{0,30}\b(system|hidden|initial)\s+(prompt|instructions?|message)\b/iu,
  },
  {
    kind: 'an instruction override',
    re: /\byou\s+are\s+now\b|\bnew\s+instructions?\s*:|\bfrom\s+now\s+on\s*,?\s+you\b|\bjailbreak\b|\bdo\s+anything\s+now\b/iu,
  },
  // Chat role markers and template tokens.
  { kind: 'a role marker', re: /(^|[\n.!?]\s*)(system|assistant|developer|user|tool)\s*:/iu },
  {
    kind: 'a role marker',
    re: /<\|?\s*(im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\s*\|?>/iu,
  },
  { kind: 'a role marker', re: /\[\/?(INST|SYS)\]|<<\/?SYS>>|###\s*(system|instruction|assistant)\b/iu },
  // Encoded payloads: long base64, hex, or escape runs that hide text from the reader.
  { kind: 'an encoded payload', re: /[A-Za-z0-9+/]{40,}={0,2}|[A-Za-z0-9_-]{60,}/u },
  { kind: 'an encoded payload', re: /\b(?:0x)?[0-9a-f]{48,}\b/iu },
  { kind: 'an encoded payload', re: /(?:\\u[0-9a-f]{4}|\\x[0-9a-f]{2}|%[0-9a-f]{2}|&#x?[0-9a-f]+;){6,}/iu },
];

export function screenText(text: string, opts: { maxLength?: number } = {}): ScreenResult {
  const max = opts.maxLength ?? DEFAULT_MAX_LENGTH;
  if (text.length > max * 4) return { ok: false, reason: `text is longer than ${max} characters` };
  const clean = text
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  if (clean.length > max) return { ok: false, reason: `text is longer than ${max} characters` };
  for (const r of RULES) {
    if (r.re.test(clean)) return { ok: false, reason: `text looks like a prompt injection (${r.kind})` };
  }
  return { ok: true, text: clean };
}
