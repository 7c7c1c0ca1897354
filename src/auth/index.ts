import type { FastifyRequest } from 'fastify';
import type { Principal } from '../../ans/index.js';
import { AdminTokens } from './admin-tokens.js';
import { verifyAgentJwt, type ClientVerifier } from './agent-jwt.js';
import { AuthErrors } from './errors.js';

export { AdminTokens, hashToken, type AdminTokenInfo } from './admin-tokens.js';
export { verifyAgentJwt, type ClientVerifier, type AgentClaims } from './agent-jwt.js';
export { AuthErrors } from './errors.js';

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw AuthErrors.missing();
  return m[1];
}

/** Turns a request's Authorization header into a Principal (or a 401). */
export class Authenticator {
  constructor(
    readonly adminTokens: AdminTokens,
    private readonly verifier: ClientVerifier,
    private readonly zone: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async principal(req: FastifyRequest): Promise<Principal> {
    const token = bearer(req);
    if (!token) return { kind: 'anonymous', ip: req.ip };
    if (token.startsWith('ans_admin_')) {
      const name = await this.adminTokens.verify(token);
      if (!name) throw AuthErrors.badAdminToken();
      return { kind: 'admin', name };
    }
    const c = await verifyAgentJwt(token, { verifier: this.verifier, zone: this.zone, now: this.now });
    return { kind: 'agent', agentId: c.agentId, fqdn: c.fqdn, jti: c.jti, exp: c.exp };
  }

  async admin(req: FastifyRequest): Promise<Principal & { kind: 'admin' }> {
    const p = await this.principal(req);
    if (p.kind === 'anonymous') throw AuthErrors.missing();
    if (p.kind !== 'admin') throw AuthErrors.adminOnly();
    return p;
  }

  async authenticated(req: FastifyRequest): Promise<Principal> {
    const p = await this.principal(req);
    if (p.kind === 'anonymous') throw AuthErrors.missing();
    return p;
  }
}
export { adminTokenRoutes } from './routes.js';
