import type { FastifyPluginAsync } from 'fastify';
import type {} from '@fastify/swagger';
import type { Db } from '../store/index.js';
import { sendProblem } from './problem.js';

/** /healthz: the process answers. /readyz: the store answers and the projections caught up. */
export const healthRoutes: FastifyPluginAsync<{ db: Db; ready: () => boolean }> = async (app, o) => {
  app.get('/healthz', { schema: { tags: ['ops'] } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['ops'] } }, async (_req, reply) => {
    try {
      await o.db.query('SELECT 1');
    } catch {
      return sendProblem(reply, 503, 'HTTP_ERR_NOT_READY', 'the store does not answer');
    }
    if (!o.ready()) return sendProblem(reply, 503, 'HTTP_ERR_NOT_READY', 'projections are still catching up');
    return { status: 'ready' };
  });
};
