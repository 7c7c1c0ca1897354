import type { FastifyPluginAsync } from 'fastify';
import type {} from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AnsErrors, actorName, type AuditLog } from '../../ans/index.js';
import type { Db } from '../store/index.js';
import type { Authenticator } from './index.js';

/** Named admin tokens: create (plaintext shown once), list, revoke. Every call is audited. */
export const adminTokenRoutes: FastifyPluginAsync<{ db: Db; auth: Authenticator; audit: AuditLog }> = async (
  app0,
  o,
) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  const Name = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' });
  app.post(
    '/v1/admin/tokens',
    { schema: { tags: ['admin'], body: Type.Object({ name: Name }, { additionalProperties: false }) } },
    async (req, reply) => {
      const by = await o.auth.admin(req);
      const made = await o.db.transaction(async (tx) => {
        const r = await o.auth.adminTokens.create(tx, req.body.name);
        if (!r) throw AnsErrors.tokenNameTaken(req.body.name);
        await o.audit.append(tx, { actor: actorName(by), action: 'admin.token.create', subject: req.body.name });
        return r;
      });
      return reply.code(201).send({ ...made.info, token: made.token });
    },
  );
  app.get('/v1/admin/tokens', { schema: { tags: ['admin'] } }, async (req) => {
    await o.auth.admin(req);
    return { tokens: await o.auth.adminTokens.list() };
  });
  app.delete(
    '/v1/admin/tokens/:name',
    { schema: { tags: ['admin'], params: Type.Object({ name: Name }, { additionalProperties: false }) } },
    async (req) => {
      const by = await o.auth.admin(req);
      await o.db.transaction(async (tx) => {
        if (!(await o.auth.adminTokens.revoke(tx, req.params.name))) throw AnsErrors.tokenNotFound(req.params.name);
        await o.audit.append(tx, { actor: actorName(by), action: 'admin.token.revoke', subject: req.params.name });
      });
      return { name: req.params.name, revoked: true };
    },
  );
};
