/** Our own agents as AMSP records: built from the registry's row, redacted, signed once. */
import type { AgentRow } from '../../ans/index.js';
import { redact, type RedactableField } from './policy.js';
import type { AgentRecord } from './types.js';

export function gatewayUrl(gatewayUri: string, fqdn: string): string {
  return `${gatewayUri.replace(/\/+$/, '')}/gw/${fqdn}/`;
}

export function recordOf(a: AgentRow, gatewayUri: string, fields: readonly RedactableField[] = []): AgentRecord {
  const protocols = [...new Set(a.card.endpoints.map((e) => e.protocol))];
  const rec: AgentRecord = {
    id: a.id,
    fqdn: a.fqdn.toLowerCase().replace(/\.$/, ''),
    domain: a.zone.toLowerCase().replace(/\.$/, ''),
    name: a.card.name,
    version: a.version,
    description: a.card.description,
    skills: a.card.skills.map((s) => ({
      id: s.id,
      name: s.name,
      description: s.description,
      ...(s.tags ? { tags: [...s.tags] } : {}),
    })),
    tags: [...new Set(a.card.skills.flatMap((s) => s.tags ?? []))],
    protocols,
    endpoints: protocols.map((protocol) => ({ protocol, url: gatewayUrl(gatewayUri, a.fqdn) })),
    origin: gatewayUri,
    seq: a.updatedAt.getTime(),
  };
  return redact(rec, fields);
}
