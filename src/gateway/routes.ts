/** The gateway's control-plane routes (admin): policies, approvals, graph, settings. */
import type {} from '@fastify/swagger';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { actorName, type Principal } from '../../ans/index.js';
import type { Db, Queryable } from '../store/index.js';
import type { Approvals } from './approval.js';
import type { AuditSink } from './audit.js';
import { GatewayErrors } from './errors.js';
import type { CallGraph } from './graph.js';
import type { PolicyStore } from './policy-store.js';
import { GatewaySettingsSchema, saveSettings, type GatewaySettings, type GatewaySettingsPatch } from './settings.js';

export interface ControlRouteOptions {
  db: Db;
  admin: (req: FastifyRequest) => Promise<Principal>;
  audit: AuditSink;
  policies: PolicyStore;
  approvals: Approvals;
  graph: CallGraph;
  settings: () => GatewaySettings;
  applySettings: (patch: GatewaySettingsPatch) => void;
}

const Pattern = Type.String({ minLength: 1, maxLength: 255 });
const PolicyBody = Type.Object(
  { caller: Pattern, target: Pattern, effect: Type.Union([Type.Literal('allow'), Type.Literal('deny')]) },
  { additionalProperties: false },
);

export const controlRoutes: FastifyPluginAsync<ControlRouteOptions> = async (app0, o) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  const log = (tx: Queryable, by: Principal, action: string, subject: string, detail: Record<string, unknown>) =>
    o.audit.append(tx, [{ actor: actorName(by), action, subject, detail }]);

  app.post(
    '/v1/policies',
    { schema: { tags: ['gateway'], body: PolicyBody, security: [{ bearer: [] }] } },
    async (req, reply) => {
      const by = await o.admin(req);
      const p = await o.policies.add(req.body, (tx, s) =>
        log(tx, by, 'policy.add', s.id, { caller: s.caller, target: s.target, effect: s.effect }),
      );
      return reply.code(201).send(p);
    },
  );

  app.get(
    '/v1/policies',
    {
      schema: {
        tags: ['gateway'],
        security: [{ bearer: [] }],
        querystring: Type.Object(
          {
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            cursor: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req) => {
      await o.admin(req);
      return o.policies.list({ limit: req.query.limit, cursor: req.query.cursor });
    },
  );

  app.delete(
    '/v1/policies/:id',
    {
      schema: {
        tags: ['gateway'],
        security: [{ bearer: [] }],
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
      },
    },
    async (req) => {
      const by = await o.admin(req);
      const p = await o.policies.remove(req.params.id, (tx, s) =>
        log(tx, by, 'policy.remove', s.id, { caller: s.caller, target: s.target, effect: s.effect }),
      );
      return { ...p, deleted: true };
    },
  );

  app.get('/v1/approvals', { schema: { tags: ['gateway'], security: [{ bearer: [] }] } }, async (req) => {
    await o.admin(req);
    return { items: await o.approvals.list() };
  });

  const decide = (verdict: 'approved' | 'denied') => async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const by = await o.admin(req);
    const ok = await o.approvals.decide(req.params.id, verdict, actorName(by), (tx, t) =>
      log(tx, by, `approval.${verdict}`, t.id, { caller: t.caller, target: t.target, skill: t.skill, path: t.path }),
    );
    if (!ok) throw GatewayErrors.unknownTicket(req.params.id);
    return { id: req.params.id, verdict };
  };
  const TicketId = {
    schema: {
      tags: ['gateway'],
      security: [{ bearer: [] }],
      params: Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
    },
  };
  app.post('/v1/approvals/:id/approve', TicketId, decide('approved'));
  app.post('/v1/approvals/:id/deny', TicketId, decide('denied'));

  app.get('/v1/graph', { schema: { tags: ['gateway'], security: [{ bearer: [] }] } }, async (req) => {
    await o.admin(req);
    return o.graph.snapshot();
  });

  app.get('/v1/gateway/settings', { schema: { tags: ['gateway'], security: [{ bearer: [] }] } }, async (req) => {
    await o.admin(req);
    return o.settings();
  });

  app.put(
    '/v1/gateway/settings',
    { schema: { tags: ['gateway'], security: [{ bearer: [] }], body: GatewaySettingsSchema } },
    async (req) => {
      const by = await o.admin(req);
      const patch = req.body;
      const stored = await saveSettings(o.db, patch, (tx) =>
        log(tx, by, 'gateway.settings', 'gateway', patch as Record<string, unknown>),
      );
      o.applySettings(stored);
      return o.settings();
    },
  );
};
