/** Who is calling: resolved by the HTTP layer, checked by the registry's permission rules. */
export type Principal =
  | { kind: 'admin'; name: string }
  | { kind: 'agent'; agentId: string; fqdn: string; jti: string; exp: Date }
  | { kind: 'anonymous'; ip: string };

export function actorName(p: Principal): string {
  switch (p.kind) {
    case 'admin':
      return `admin:${p.name}`;
    case 'agent':
      return `agent:${p.agentId}`;
    case 'anonymous':
      return `anonymous:${p.ip}`;
  }
}
