import type {} from '@fastify/swagger';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { REVOCATION_REASONS } from '../ca/index.js';
import { AgentCard } from './card.js';
import { STATUSES, type AgentStatus } from './lifecycle.js';
import type { Principal } from './principal.js';
import type { AgentView, Registry, IssuedCertificate } from './service.js';

/** What the routes need from the HTTP layer's authentication. */
export interface RequestAuth {
  principal(req: FastifyRequest): Promise<Principal>;
  admin(req: FastifyRequest): Promise<Principal>;
  authenticated(req: FastifyRequest): Promise<Principal>;
}

export interface RegistryRouteOptions {
  registry: Registry;
  auth: RequestAuth;
  /** Per-IP registrations per minute (anonymous callers). */
  registerPerMinute: number;
}

const Id = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false });
const Csr = Type.String({ minLength: 1, maxLength: 65_536 });
const Reason = Type.Union(REVOCATION_REASONS.map((r) => Type.Literal(r)));

function certJson(c: IssuedCertificate) {
  return {
    serial: c.serial,
    certificate: c.pem,
    chain: c.chainPem,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    spkiSha256: c.spkiSha256,
  };
}

/** A public caller sees the card and state, not the CSR or history; agents and admins see more. */
function isPrivileged(p: Principal, a: { id: string }): boolean {
  return p.kind === 'admin' || (p.kind === 'agent' && p.agentId === a.id);
}

export const registryRoutes: FastifyPluginAsync<RegistryRouteOptions> = async (app0, opts) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  const { registry, auth } = opts;

  app.post(
    '/v1/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'Register an agent (pending until an admin approves)',
        body: Type.Object({ card: AgentCard, csr: Csr }, { additionalProperties: false }),
      },
      config: { rateLimit: { max: opts.registerPerMinute, timeWindow: 60_000 } },
    },
    async (req, reply) => {
      const by = await auth.principal(req);
      const r = await registry.register(req.body.card, req.body.csr, by);
      return reply.code(202).header('location', `/v1/agents/${r.id}`).send(r);
    },
  );

  app.get(
    '/v1/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'List agents (public: active ones; admin: any status)',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Union(STATUSES.map((s) => Type.Literal(s)))),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      const by = await auth.principal(req);
      const q = req.query;
      let statuses: AgentStatus[] | undefined = q.status ? [q.status] : undefined;
      if (by.kind !== 'admin') statuses = ['active'];
      const page = await registry.list({ statuses, limit: q.limit, ...(q.cursor ? { cursor: q.cursor } : {}) });
      return { agents: page.items, nextCursor: page.nextCursor };
    },
  );

  app.get('/v1/agents/:id', { schema: { tags: ['agents'], params: Id } }, async (req) => {
    const by = await auth.principal(req);
    const a = await registry.get(req.params.id);
    const view: AgentView & { versions?: unknown } = registry.view(a);
    if (isPrivileged(by, a)) view.versions = await registry.versions(a.id);
    return view;
  });

  app.get('/v1/agents/:id/certificate', { schema: { tags: ['agents', 'ca'], params: Id } }, async (req, reply) => {
    const c = await registry.certificate(req.params.id);
    if (!c) {
      return reply
        .code(404)
        .type('application/problem+json')
        .send({
          type: 'urn:ans:problem:ans-err-no-certificate',
          title: 'Not Found',
          status: 404,
          code: 'ANS_ERR_NO_CERTIFICATE',
          detail: 'this agent has no certificate (not approved yet)',
          instance: req.url,
          requestId: String(req.id),
        });
    }
    return {
      ...certJson(c),
      status: c.status,
      ...(c.revokedAt ? { revokedAt: c.revokedAt.toISOString(), reason: c.reason } : {}),
    };
  });

  app.post('/v1/agents/:id/approve', { schema: { tags: ['admin'], params: Id } }, async (req) => {
    const by = await auth.admin(req);
    const r = await registry.approve(req.params.id, by);
    return { id: r.agent.id, fqdn: r.agent.fqdn, status: r.agent.status, ...certJson(r.certificate) };
  });

  for (const action of ['reject', 'suspend', 'resume'] as const) {
    app.post(
      `/v1/agents/:id/${action}`,
      {
        schema: {
          tags: ['admin'],
          params: Id,
          body: Type.Optional(
            Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
          ),
        },
      },
      async (req) => {
        const by = await auth.admin(req);
        return registry.act(req.params.id, action, by, req.body?.reason);
      },
    );
  }

  app.put(
    '/v1/agents/:id',
    {
      schema: {
        tags: ['agents'],
        summary: 'Update the card (same major: in place; incompatible changes need a new major version)',
        params: Id,
        body: Type.Object({ card: AgentCard, csr: Type.Optional(Csr) }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const by = await auth.authenticated(req);
      const r = await registry.update(req.params.id, req.body.card, req.body.csr, by);
      return { ...r.agent, ...(r.certificate ? { certificate: certJson(r.certificate) } : {}) };
    },
  );

  app.post('/v1/agents/:id/heartbeat', { schema: { tags: ['agents'], params: Id } }, async (req) => {
    const by = await auth.authenticated(req);
    const a = await registry.heartbeat(req.params.id, by);
    return { id: a.id, status: a.status, liveness: a.liveness, lastHeartbeat: a.lastHeartbeat };
  });

  app.post(
    '/v1/agents/:id/renew',
    { schema: { tags: ['agents'], params: Id, body: Type.Object({ csr: Csr }, { additionalProperties: false }) } },
    async (req) => {
      const by = await auth.authenticated(req);
      return certJson(await registry.renew(req.params.id, req.body.csr, by));
    },
  );

  app.post(
    '/v1/agents/:id/revoke',
    {
      schema: {
        tags: ['agents', 'admin'],
        params: Id,
        body: Type.Object({ reason: Reason }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const by = await auth.authenticated(req);
      const r = await registry.revoke(req.params.id, req.body.reason, by);
      return { ...r.agent, revokedSerials: r.revoked };
    },
  );

  app.delete('/v1/agents/:id', { schema: { tags: ['agents', 'admin'], params: Id } }, async (req) => {
    const by = await auth.authenticated(req);
    return registry.act(req.params.id, 'deregister', by);
  });

  app.get(
    '/v1/audit',
    {
      schema: {
        tags: ['admin'],
        querystring: Type.Object(
          {
            after: Type.Integer({ minimum: 0, default: 0 }),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            subject: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      await auth.admin(req);
      const entries = await registry.audit.list({
        after: req.query.after,
        limit: req.query.limit,
        ...(req.query.subject ? { subject: req.query.subject } : {}),
      });
      return { entries, nextAfter: entries.length === req.query.limit ? entries.at(-1)!.seq : null };
    },
  );

  app.get('/v1/audit/verify', { schema: { tags: ['admin'] } }, async (req) => {
    await auth.admin(req);
    return registry.audit.verify();
  });
};
