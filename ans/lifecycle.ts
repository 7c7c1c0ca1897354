/** Agent lifecycle: a typed state set and the only transitions allowed between states. */
export const STATUSES = ['pending', 'rejected', 'active', 'suspended', 'revoked', 'deregistered'] as const;
export type AgentStatus = (typeof STATUSES)[number];

export type Liveness = 'online' | 'offline' | 'unknown';

export type LifecycleAction = 'approve' | 'reject' | 'suspend' | 'resume' | 'revoke' | 'deregister';

const TRANSITIONS: Record<LifecycleAction, { from: readonly AgentStatus[]; to: AgentStatus }> = {
  approve: { from: ['pending'], to: 'active' },
  reject: { from: ['pending'], to: 'rejected' },
  suspend: { from: ['active'], to: 'suspended' },
  resume: { from: ['suspended'], to: 'active' },
  revoke: { from: ['active', 'suspended'], to: 'revoked' },
  deregister: { from: ['pending', 'active', 'suspended', 'revoked'], to: 'deregistered' },
};

/** The state `action` leads to from `from`, or undefined when the transition is illegal. */
export function transition(from: AgentStatus, action: LifecycleAction): AgentStatus | undefined {
  const t = TRANSITIONS[action];
  return t.from.includes(from) ? t.to : undefined;
}

// Statuses that hold the agent's label (pending, active, suspended, revoked) are enforced by the
// partial unique index `agents_fqdn_live` in migrations/001_init.sql.

/** Heartbeat tracking starts with the first heartbeat; three missed intervals mean offline. */
export function livenessOf(lastHeartbeat: Date | null, now: Date, intervalMs: number): Liveness {
  if (!lastHeartbeat) return 'unknown';
  return now.getTime() - lastHeartbeat.getTime() > 3 * intervalMs ? 'offline' : 'online';
}
