import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Registry as MetricsRegistry } from 'prom-client';
import { installProblemHandlers } from './problem.js';
import { instrumentHttp } from './metrics.js';

export { sendProblem, problemType, type Problem } from './problem.js';
export { createMetrics } from './metrics.js';

export interface HttpOptions {
  logger: FastifyBaseLogger;
  bodyLimit: number;
  metrics: MetricsRegistry;
  version: string;
  https?: { cert: string; key: string } | undefined;
  /** Request headers not complete after this long: 408 and the connection closed (default 10 s). */
  headersTimeoutMs?: number;
}

/**
 * The Fastify instance every route plugin mounts on: problem+json errors, strict schemas
 * (unknown fields are errors, not silently dropped), request ids, rate limiting (per route),
 * metrics and OpenAPI at /docs.
 */
export async function buildHttp(opts: HttpOptions): Promise<FastifyInstance> {
  // `http` goes to http.createServer (plain HTTP); the HTTPS options below carry the same.
  const base: FastifyServerOptions & { http?: { connectionsCheckingInterval: number } } = {
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // Per-request info lines cost more than the request on hot paths; metrics count requests.
    logController: new LogController({ disableRequestLogging: true }),
    // Idle keep-alive sockets close after 72 s (Fastify's keepAliveTimeout); the connection
    // timeout must not be shorter, or clients reuse sockets the server is about to drop.
    connectionTimeout: 0,
    requestTimeout: 60_000,
    routerOptions: { maxParamLength: 512 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  };
  // Node looks for requests past their headers or request deadline only every
  // `connectionsCheckingInterval` (30 s by default): a slow-loris client would hold its socket
  // that much longer than the headers timeout says.
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const checks = { connectionsCheckingInterval: Math.min(1000, headersTimeout / 2) };
  base.http = checks;
  // Off loopback ANS serves HTTPS only, TLS 1.3.
  const app = (
    opts.https
      ? Fastify({
          ...base,
          // A client may present an ANS certificate (mutual TLS for gateway callers). The
          // handshake proves the key; the gateway checks the chain and its status against the
          // ANS CA itself (rotation, revocation), so OpenSSL is not asked to reject anything.
          https: {
            cert: opts.https.cert,
            key: opts.https.key,
            minVersion: 'TLSv1.3',
            requestCert: true,
            rejectUnauthorized: false,
            ...checks,
          },
        } as FastifyServerOptions)
      : Fastify(base)
  ) as FastifyInstance;
  app.server.headersTimeout = headersTimeout;
  installProblemHandlers(app);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => {
      const e = new Error(`rate limit exceeded: ${ctx.max} requests per ${ctx.after}; retry later`) as Error & {
        statusCode: number;
      };
      e.statusCode = 429;
      return e;
    },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'ANS — Agent Name Service', version: opts.version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  instrumentHttp(app, opts.metrics);
  return app;
}

export { registerDomainMetrics, type DomainSources } from './domain-metrics.js';
