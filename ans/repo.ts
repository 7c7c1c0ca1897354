/** All of the registry's SQL. */
import type { Queryable, Statement } from '../src/store/index.js';
import type { AgentCard } from './card.js';
import type { AgentStatus } from './lifecycle.js';

export interface AgentRow {
  id: string;
  label: string;
  zone: string;
  fqdn: string;
  status: AgentStatus;
  version: string;
  card: AgentCard;
  csr: string;
  createdAt: Date;
  updatedAt: Date;
  lastHeartbeat: Date | null;
  certSerial: string | null;
  spkiSha256: string | null;
}

interface RawRow {
  id: string;
  label: string;
  zone: string;
  fqdn: string;
  status: AgentStatus;
  version: string;
  card: AgentCard | string;
  csr: string;
  created_at: Date | string;
  updated_at: Date | string;
  last_heartbeat: Date | string | null;
  cert_serial: string | null;
  spki_sha256: string | null;
}

function toRow(r: RawRow): AgentRow {
  return {
    id: r.id,
    label: r.label,
    zone: r.zone,
    fqdn: r.fqdn,
    status: r.status,
    version: r.version,
    card: typeof r.card === 'string' ? (JSON.parse(r.card) as AgentCard) : r.card,
    csr: r.csr,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    lastHeartbeat: r.last_heartbeat === null ? null : new Date(r.last_heartbeat),
    certSerial: r.cert_serial,
    spkiSha256: r.spki_sha256,
  };
}

const COLS =
  'id, label, zone, fqdn, status, version, card, csr, created_at, updated_at, last_heartbeat, cert_serial, spki_sha256';

/** A new pending agent and its first version. */
export function insertAgentStatements(a: {
  id: string;
  label: string;
  zone: string;
  fqdn: string;
  version: string;
  card: AgentCard;
  csr: string;
  now: Date;
}): Statement[] {
  return [
    {
      text: `INSERT INTO agents (id, label, zone, fqdn, status, version, card, csr, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $8)`,
      params: [a.id, a.label, a.zone, a.fqdn, a.version, JSON.stringify(a.card), a.csr, a.now.toISOString()],
    },
    insertVersionStatement(a.id, a.version, a.card, a.now),
  ];
}

export function insertVersionStatement(id: string, version: string, card: AgentCard, now: Date): Statement {
  return {
    text: 'INSERT INTO agent_versions (agent_id, version, card, created_at) VALUES ($1, $2, $3, $4)',
    params: [id, version, JSON.stringify(card), now.toISOString()],
  };
}

export async function getAgent(db: Queryable, id: string, forUpdate = false): Promise<AgentRow | undefined> {
  const rows = await db.query<RawRow>(`SELECT ${COLS} FROM agents WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [
    id,
  ]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

export async function listAgents(
  db: Queryable,
  opts: { statuses: readonly AgentStatus[] | undefined; afterId: string | undefined; limit: number },
): Promise<AgentRow[]> {
  const rows = await db.query<RawRow>(
    `SELECT ${COLS} FROM agents
      WHERE ($1::text[] IS NULL OR status = ANY($1::text[])) AND ($2::text IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [opts.statuses ? [...opts.statuses] : null, opts.afterId ?? null, opts.limit],
  );
  return rows.map(toRow);
}

export function updateAgentStatement(
  id: string,
  set: {
    status?: AgentStatus;
    version?: string;
    card?: AgentCard;
    csr?: string;
    cert?: { serial: string; spkiSha256: string };
    now: Date;
  },
): Statement {
  return {
    text: `UPDATE agents SET status = COALESCE($2, status), version = COALESCE($3, version),
            card = COALESCE($4::jsonb, card), csr = COALESCE($5, csr), updated_at = $6,
            cert_serial = COALESCE($7, cert_serial), spki_sha256 = COALESCE($8, spki_sha256)
      WHERE id = $1`,
    params: [
      id,
      set.status ?? null,
      set.version ?? null,
      set.card ? JSON.stringify(set.card) : null,
      set.csr ?? null,
      set.now.toISOString(),
      set.cert?.serial ?? null,
      set.cert?.spkiSha256 ?? null,
    ],
  };
}

export async function setHeartbeat(db: Queryable, id: string, at: Date): Promise<void> {
  await db.query('UPDATE agents SET last_heartbeat = $2 WHERE id = $1', [id, at.toISOString()]);
}

/** Heartbeats newer than `since`, for the liveness sweep (other processes' heartbeats). */
export async function heartbeatsSince(db: Queryable, since: Date): Promise<{ id: string; at: Date }[]> {
  const rows = await db.query<{ id: string; last_heartbeat: Date | string }>(
    `SELECT id, last_heartbeat FROM agents WHERE status = 'active' AND last_heartbeat > $1`,
    [since.toISOString()],
  );
  return rows.map((r) => ({ id: r.id, at: new Date(r.last_heartbeat) }));
}

export async function versions(db: Queryable, id: string): Promise<{ version: string; createdAt: Date }[]> {
  const rows = await db.query<{ version: string; created_at: Date | string }>(
    'SELECT version, created_at FROM agent_versions WHERE agent_id = $1 ORDER BY created_at, version',
    [id],
  );
  return rows.map((r) => ({ version: r.version, createdAt: new Date(r.created_at) }));
}

/** Returns false when the jti was seen before (the unique key refuses it). */
export async function consumeJti(tx: Queryable, jti: string, exp: Date): Promise<boolean> {
  const rows = await tx.query(
    'INSERT INTO used_jti (jti, exp) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING RETURNING jti',
    [jti, exp.toISOString()],
  );
  return rows.length === 1;
}

export async function purgeExpiredJti(db: Queryable, now: Date): Promise<void> {
  // Kept 60 s past exp so clock skew cannot let a token be replayed after its row is gone.
  await db.query("DELETE FROM used_jti WHERE exp < $1::timestamptz - interval '60 seconds'", [now.toISOString()]);
}

export async function countByStatus(db: Queryable): Promise<Record<string, number>> {
  const rows = await db.query<{ status: string; n: string }>(
    'SELECT status, count(*) AS n FROM agents GROUP BY status',
  );
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}
