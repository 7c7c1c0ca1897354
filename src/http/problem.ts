import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAnsError } from '../errors/index.js';

/** RFC 9457 problem details; `code` is the stable machine-readable name. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance: string;
  requestId: string;
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function problemType(code: string): string {
  return `urn:ans:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  const req = reply.request;
  const body: Problem = {
    type: problemType(code),
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    instance: req.url.split('?')[0] ?? req.url,
    requestId: String(req.id),
    ...extra,
  };
  return reply.code(status).type('application/problem+json').send(body);
}

interface ValidationItem {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Names the field a schema error is about, e.g. `body/card/skills/0: must have required property 'id'`. */
function describeValidation(context: string | undefined, items: readonly ValidationItem[]): string {
  return items
    .slice(0, 5)
    .map((v) => {
      const where = `${context ?? 'body'}${v.instancePath ?? ''}`;
      const extraProp = v.params?.['additionalProperty'];
      if (typeof extraProp === 'string') return `${where}: unknown field '${extraProp}'`;
      return `${where}: ${v.message ?? 'is invalid'}`;
    })
    .join('; ');
}

const FASTIFY_CODES: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'HTTP_ERR_BODY_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'HTTP_ERR_UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'HTTP_ERR_BAD_CONTENT_LENGTH' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'HTTP_ERR_EMPTY_BODY' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'HTTP_ERR_MALFORMED_JSON' },
};

const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 5000;

/**
 * Reads and discards the rest of a refused body before answering (nginx's lingering close).
 * Closing on a client that is still sending resets the connection, and most clients then report
 * a broken pipe instead of our 413. Bounded in bytes and time, so it cannot be abused.
 */
function drainThen(req: FastifyRequest): Promise<void> {
  const raw = req.raw;
  if (raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.removeListener('data', onData);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_MAX_BYTES) finish();
    };
    const timer = setTimeout(finish, DRAIN_MAX_MS);
    raw.on('data', onData);
    raw.once('end', finish);
    raw.once('error', finish);
    raw.once('close', finish);
  });
}

/** One renderer for every error: catalogue errors, schema errors, Fastify's own, and the rest. */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (isAnsError(err)) {
      if (err.statusCode >= 500) req.log.error({ err }, err.message);
      return sendProblem(reply, err.statusCode, err.code, err.message, { ...(err.extra ?? {}) });
    }
    if (err.validation) {
      return sendProblem(reply, 400, 'HTTP_ERR_VALIDATION', describeValidation(err.validationContext, err.validation));
    }
    const known = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (known && err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return drainThen(req).then(() => sendProblem(reply, known.status, known.code, err.message));
    }
    if (known) return sendProblem(reply, known.status, known.code, err.message);
    if (err instanceof SyntaxError || (err.statusCode === 400 && err.code === undefined)) {
      return sendProblem(reply, 400, 'HTTP_ERR_MALFORMED_JSON', `the body is not valid JSON: ${err.message}`);
    }
    const status = err.statusCode ?? 500;
    if (status === 429) return sendProblem(reply, 429, 'HTTP_ERR_RATE_LIMITED', err.message);
    if (status >= 400 && status < 500) {
      return sendProblem(
        reply,
        status,
        err.code ? `HTTP_ERR_${err.code.replace(/^FST_ERR_/, '')}` : 'HTTP_ERR_BAD_REQUEST',
        err.message,
      );
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(
      reply,
      500,
      'HTTP_ERR_INTERNAL',
      'internal error; the request id identifies it in the server log',
    );
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, 404, 'HTTP_ERR_NO_ROUTE', `no route ${req.method} ${req.url.split('?')[0]}`),
  );
}
