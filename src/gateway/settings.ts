/**
 * The gateway's tunables. Defaults come from `GatewayOptions` at composition; an admin can change
 * them at run time (`PUT /v1/gateway/settings`), which stores them in the `settings` table under
 * the key `gateway` and announces the change on the feed so every `ans serve` on the store
 * follows. Per-agent load balancing is set here too (`agents: {fqdn: {balancer}}`).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Db, Queryable } from '../store/index.js';
import { recordChange } from '../events/index.js';
import { STRATEGIES, type Strategy } from './balancer.js';

const ms = (max: number) => Type.Integer({ minimum: 1, maximum: max });

export const AgentSettings = Type.Object(
  { balancer: Type.Union(STRATEGIES.map((s) => Type.Literal(s))) },
  { additionalProperties: false },
);

export const GatewaySettingsSchema = Type.Object(
  {
    connectTimeoutMs: Type.Optional(ms(120_000)),
    firstByteTimeoutMs: Type.Optional(ms(3_600_000)),
    idleTimeoutMs: Type.Optional(ms(3_600_000)),
    requestBodyIdleMs: Type.Optional(ms(3_600_000)),
    approvalTimeoutMs: Type.Optional(ms(86_400_000)),
    maxPendingApprovals: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    ratePerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000 })),
    rateBurst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    bodyLimit: Type.Optional(Type.Integer({ minimum: 1024, maximum: 1024 ** 4 })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 5 })),
    balancer: Type.Optional(Type.Union(STRATEGIES.map((s) => Type.Literal(s)))),
    maxFailures: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    ejectMs: Type.Optional(ms(3_600_000)),
    maxEjectMs: Type.Optional(ms(86_400_000)),
    agents: Type.Optional(Type.Record(Type.String({ maxLength: 253 }), AgentSettings)),
    dataPlane: Type.Optional(
      Type.Union([
        Type.Null(),
        Type.Object(
          { port: Type.Integer({ minimum: 1, maximum: 65535 }), workers: Type.Integer({ minimum: 1, maximum: 64 }) },
          { additionalProperties: false },
        ),
      ]),
    ),
  },
  { additionalProperties: false },
);
export type GatewaySettingsPatch = Static<typeof GatewaySettingsSchema>;

export interface GatewaySettings {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  /** A request body that sends nothing for this long is cut (slow-loris). */
  requestBodyIdleMs: number;
  approvalTimeoutMs: number;
  maxPendingApprovals: number;
  ratePerMinute: number;
  rateBurst: number;
  /** Largest request body forwarded (bytes). */
  bodyLimit: number;
  /** Tries per request, counting the first (retries only where safe). */
  maxAttempts: number;
  balancer: Strategy;
  maxFailures: number;
  ejectMs: number;
  maxEjectMs: number;
  agents: Record<string, { balancer: Strategy }>;
  /**
   * Extra data-plane processes serving `/gw/` on their own port (loopback, plain HTTP), so the
   * gateway uses more than one core; null for none.
   */
  dataPlane: { port: number; workers: number } | null;
}

export const DEFAULT_SETTINGS: GatewaySettings = {
  connectTimeoutMs: 5_000,
  firstByteTimeoutMs: 60_000,
  idleTimeoutMs: 300_000,
  requestBodyIdleMs: 30_000,
  approvalTimeoutMs: 300_000,
  maxPendingApprovals: 1_000,
  ratePerMinute: 600_000,
  rateBurst: 10_000,
  bodyLimit: 64 * 1024 * 1024,
  maxAttempts: 2,
  balancer: 'round-robin',
  maxFailures: 3,
  ejectMs: 5_000,
  maxEjectMs: 60_000,
  agents: {},
  dataPlane: null,
};

export function mergeSettings(base: GatewaySettings, patch: GatewaySettingsPatch): GatewaySettings {
  const agents = { ...base.agents };
  for (const [k, v] of Object.entries(patch.agents ?? {})) agents[k.toLowerCase().replace(/\.$/, '')] = v;
  const merged = { ...base, ...patch, agents } as GatewaySettings;
  return merged;
}

const KEY = 'gateway';

export async function loadSettings(db: Db): Promise<GatewaySettingsPatch> {
  const rows = await db.query<{ value: GatewaySettingsPatch | string }>('SELECT value FROM settings WHERE key = $1', [
    KEY,
  ]);
  const v = rows[0]?.value;
  if (!v) return {};
  return typeof v === 'string' ? (JSON.parse(v) as GatewaySettingsPatch) : v;
}

/** Stores the merged patch and records a change so every process reloads. */
export async function saveSettings(
  db: Db,
  patch: GatewaySettingsPatch,
  audit: (tx: Queryable) => Promise<void>,
): Promise<GatewaySettingsPatch> {
  return db.transaction(async (tx) => {
    const rows = await tx.query<{ value: GatewaySettingsPatch | string }>(
      'SELECT value FROM settings WHERE key = $1 FOR UPDATE',
      [KEY],
    );
    const cur = rows[0]?.value
      ? typeof rows[0].value === 'string'
        ? (JSON.parse(rows[0].value) as GatewaySettingsPatch)
        : rows[0].value
      : {};
    const next: GatewaySettingsPatch = { ...cur, ...patch, agents: { ...(cur.agents ?? {}), ...(patch.agents ?? {}) } };
    await tx.query(
      'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
      [KEY, JSON.stringify(next)],
    );
    await audit(tx);
    await recordChange(tx, 'gateway', 'settings', 'gateway.settings');
    return next;
  });
}
