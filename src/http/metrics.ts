import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One Prometheus registry per app (tests build several apps in one process). */
export function createMetrics(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ans_' });
  return registry;
}

export function instrumentHttp(app: FastifyInstance, registry: Registry): void {
  const duration = new Histogram({
    name: 'ans_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'ans_http_errors_total',
    help: 'HTTP responses with status >= 400, by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    duration.observe({ method: req.method, route, status }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) errors.inc({ route, status });
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}
