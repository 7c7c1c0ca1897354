import type { FastifyPluginAsync } from 'fastify';
import type {} from '@fastify/swagger';
import type { RequestAuth } from '../../ans/index.js';

/** GET /v1/dns/zone: the zone in master-file format (admin), what `ans dns zone` prints. */
export const zoneRoutes: FastifyPluginAsync<{ auth: RequestAuth; masterFile: () => string }> = async (app, o) => {
  app.get('/v1/dns/zone', { schema: { tags: ['dns', 'admin'] } }, async (req, reply) => {
    await o.auth.admin(req);
    return reply.type('text/dns; charset=utf-8').send(o.masterFile());
  });
};
