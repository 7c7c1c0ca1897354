import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../store/index.js';

const PREFIX = 'ans_admin_';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface AdminTokenInfo {
  id: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
}

/**
 * Named admin bearer tokens. Only their SHA-256 is stored; the plaintext is shown once. A
 * verified token is cached briefly so a hot path does not hit the store on every call.
 */
export class AdminTokens {
  private readonly cache = new Map<string, { name: string | null; until: number }>();

  constructor(
    private readonly db: Db,
    private readonly cacheMs = 5000,
  ) {}

  async create(tx: Queryable, name: string): Promise<{ token: string; info: AdminTokenInfo } | undefined> {
    const token = PREFIX + randomBytes(32).toString('base64url');
    const id = randomUUID();
    const rows = await tx.query<{ created_at: Date | string }>(
      `INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING created_at`,
      [id, name, hashToken(token)],
    );
    if (rows.length === 0) return undefined;
    return { token, info: { id, name, createdAt: new Date(rows[0]!.created_at).toISOString(), revokedAt: null } };
  }

  async revoke(tx: Queryable, name: string): Promise<boolean> {
    const rows = await tx.query(
      'UPDATE admin_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id',
      [name],
    );
    this.cache.clear();
    return rows.length === 1;
  }

  async list(): Promise<AdminTokenInfo[]> {
    const rows = await this.db.query<{ id: string; name: string; created_at: Date; revoked_at: Date | null }>(
      'SELECT id, name, created_at, revoked_at FROM admin_tokens ORDER BY created_at',
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      createdAt: new Date(r.created_at).toISOString(),
      revokedAt: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
    }));
  }

  async any(): Promise<boolean> {
    const rows = await this.db.query('SELECT 1 FROM admin_tokens LIMIT 1');
    return rows.length > 0;
  }

  /** The token's name, or null when it is unknown or revoked. */
  async verify(token: string): Promise<string | null> {
    if (!token.startsWith(PREFIX)) return null;
    const h = hashToken(token);
    const hit = this.cache.get(h);
    const now = Date.now();
    if (hit && hit.until > now) return hit.name;
    const rows = await this.db.query<{ name: string }>(
      'SELECT name FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL',
      [h],
    );
    const name = rows[0]?.name ?? null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(h, { name, until: now + this.cacheMs });
    return name;
  }
}
