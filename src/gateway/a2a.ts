/**
 * A2A termination: the domain's aggregated agent card (every active agent's skills, gateway
 * URLs only) and `POST /a2a`, which routes a JSON-RPC message to an agent by
 * `params.metadata.skillId` (qualified `<label>.<skill>` as the aggregated card lists it, or a
 * bare skill id) or by `params.metadata.intent` through semantic search.
 */
import type { AgentRow } from '../../ans/index.js';
import type { Skill } from '../../ans/index.js';

export const A2A_METHODS = new Set(['message/send', 'message/stream', 'SendMessage', 'SendStreamingMessage']);
export const STREAMING_METHODS = new Set(['message/stream', 'SendStreamingMessage']);

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id?: string | number | null;
  method: string;
  params?: { metadata?: Record<string, unknown>; message?: { metadata?: Record<string, unknown> } } & Record<
    string,
    unknown
  >;
}

export function isJsonRpc(b: unknown): b is JsonRpcRequest {
  return (
    !!b &&
    typeof b === 'object' &&
    (b as { jsonrpc?: unknown }).jsonrpc === '2.0' &&
    typeof (b as { method?: unknown }).method === 'string'
  );
}

/** Where the routing hints are: `params.metadata`, or the message's metadata. */
export function routingHints(r: JsonRpcRequest): { skillId: string | undefined; intent: string | undefined } {
  const pick = (k: string): string | undefined => {
    for (const m of [r.params?.metadata, r.params?.message?.metadata]) {
      const v = m?.[k];
      if (typeof v === 'string' && v.length > 0) return v;
    }
    return undefined;
  };
  return { skillId: pick('skillId'), intent: pick('intent') };
}

export function jsonRpcError(id: JsonRpcRequest['id'], code: number, message: string): Record<string, unknown> {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message } };
}

export interface CardInfo {
  zone: string; // normalised
  publicUrl: string;
  version: string;
}

/** Skill id in the aggregated card: `<label>.<skill id>` (labels have no dots). */
export function qualifiedSkill(a: AgentRow, s: Skill): string {
  return `${a.label}.${s.id}`;
}

/** The aggregated card: A2A v1.0 `supportedInterfaces` plus the v0.3 fields. */
export function aggregatedCard(agents: Iterable<AgentRow>, info: CardInfo): Record<string, unknown> {
  const url = `${info.publicUrl}/a2a`;
  const skills: Record<string, unknown>[] = [];
  for (const a of agents) {
    if (!a.card.endpoints.some((e) => e.protocol === 'a2a')) continue;
    for (const s of a.card.skills) {
      skills.push({
        id: qualifiedSkill(a, s),
        name: s.name,
        description: s.description,
        tags: s.tags ?? [],
        ...(s.examples ? { examples: s.examples } : {}),
      });
    }
  }
  skills.sort((x, y) => String(x['id']).localeCompare(String(y['id'])));
  return {
    name: `${info.zone} agents`,
    description: `Agents of ${info.zone}, reachable through the ANS gateway. Address a skill with params.metadata.skillId, or describe the need with params.metadata.intent.`,
    version: info.version,
    protocolVersion: '0.3.0',
    url,
    preferredTransport: 'JSONRPC',
    supportedInterfaces: [{ url, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
    additionalInterfaces: [{ url, transport: 'JSONRPC' }],
    provider: { organization: info.zone, url: info.publicUrl },
    capabilities: { streaming: true, pushNotifications: false },
    defaultInputModes: ['text/plain', 'application/json'],
    defaultOutputModes: ['text/plain', 'application/json'],
    skills,
  };
}

/** Candidates for a skill id: the qualified form names one agent; a bare id any agent offering it. */
export function agentsForSkill(
  skillId: string,
  agents: Iterable<AgentRow>,
  byName: (fqdn: string) => AgentRow | undefined,
  zone: string,
): { agent: AgentRow; skill: string }[] {
  const dot = skillId.indexOf('.');
  if (dot > 0) {
    const a = byName(`${skillId.slice(0, dot).toLowerCase()}.${zone}`);
    const bare = skillId.slice(dot + 1);
    if (a && a.card.skills.some((s) => s.id === bare)) return [{ agent: a, skill: bare }];
  }
  const out: { agent: AgentRow; skill: string }[] = [];
  for (const a of agents) if (a.card.skills.some((s) => s.id === skillId)) out.push({ agent: a, skill: skillId });
  return out;
}

/** The body to forward: the same request with the agent's own skill id. */
export function withSkill(r: JsonRpcRequest, skill: string | undefined): JsonRpcRequest {
  if (skill === undefined) return r;
  const params = { ...(r.params ?? {}) } as NonNullable<JsonRpcRequest['params']>;
  if (params.metadata && typeof params.metadata['skillId'] === 'string')
    params.metadata = { ...params.metadata, skillId: skill };
  if (params.message?.metadata && typeof params.message.metadata['skillId'] === 'string') {
    params.message = { ...params.message, metadata: { ...params.message.metadata, skillId: skill } };
  }
  return { ...r, params };
}
