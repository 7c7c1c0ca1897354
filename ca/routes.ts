/**
 * The CA's HTTP routes: thin decode -> authority -> render. Errors thrown here are AnsErrors
 * (CA_ERR_*), rendered as problem+json by the server's error handler; OCSP problems are OCSP
 * answers (malformedRequest, unauthorized), never HTTP errors.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { CertificateAuthority } from './authority.js';
import { ocspError } from './ocsp.js';

/** An OCSP request is a few hundred bytes; 16 KB leaves room and nothing more. */
export const OCSP_BODY_LIMIT = 16 * 1024;
/** A GET request carries the base64 DER in the path (RFC 6960 A.1); same cap, encoded. */
const MAX_GET_CHARS = Math.ceil((OCSP_BODY_LIMIT * 4) / 3) * 3;

const ISSUER_ID = Type.Object({ issuer: Type.String({ pattern: '^issuing-[0-9]{1,6}$' }) });

export interface CaRouteOptions {
  /** Resolves for an admin caller and throws (401/403) otherwise; enables admin-only routes. */
  requireAdmin?: (req: FastifyRequest) => Promise<unknown>;
}

export function caRoutes(ca: CertificateAuthority, opts: CaRouteOptions = {}): FastifyPluginAsync {
  return async (app) => {
    app.addContentTypeParser(
      'application/ocsp-request',
      { parseAs: 'buffer', bodyLimit: OCSP_BODY_LIMIT },
      (_req, body, done) => done(null, body),
    );

    const ocspReply = (der: Uint8Array) => Buffer.from(der.buffer, der.byteOffset, der.byteLength);

    app.get(
      '/v1/ca/certificate',
      { schema: { summary: 'The CA chain: issuing CA(s) first, root last (PEM)', tags: ['ca'] } },
      async (_req, reply) => {
        const pem = ca.chainPem();
        return reply.type('application/pem-certificate-chain').header('cache-control', 'public, max-age=300').send(pem);
      },
    );

    app.get(
      '/v1/ca/root',
      { schema: { summary: 'The root CA certificate (PEM)', tags: ['ca'] } },
      async (_req, reply) => reply.type('application/pem-certificate-chain').send(ca.rootPem()),
    );

    app.get(
      '/v1/ca/crl',
      { schema: { summary: "The current issuing CA's CRL (DER)", tags: ['ca'] } },
      async (_req, reply) => {
        const der = await ca.crl();
        return reply.type('application/pkix-crl').header('cache-control', 'no-cache').send(ocspReply(der));
      },
    );

    app.get<{ Params: { issuer: string } }>(
      '/v1/ca/crl/:issuer',
      {
        schema: {
          summary: 'The CRL of one issuing CA (DER); certificates point here',
          tags: ['ca'],
          params: ISSUER_ID,
        },
      },
      async (req, reply) => {
        const der = await ca.crl(req.params.issuer);
        return reply.type('application/pkix-crl').header('cache-control', 'no-cache').send(ocspReply(der));
      },
    );

    app.post(
      '/v1/ca/ocsp',
      { bodyLimit: OCSP_BODY_LIMIT, schema: { summary: 'OCSP (RFC 6960), DER request body', tags: ['ca'] } },
      async (req, reply) => {
        const body = req.body;
        const der = Buffer.isBuffer(body) ? await ca.ocsp(new Uint8Array(body)) : ocspError('malformedRequest');
        return reply.type('application/ocsp-response').header('cache-control', 'no-cache').send(ocspReply(der));
      },
    );

    app.get<{ Params: { '*': string } }>(
      '/v1/ca/ocsp/*',
      { schema: { summary: 'OCSP (RFC 6960 A.1), base64 DER request in the path', tags: ['ca'] } },
      async (req, reply) => {
        const raw = req.params['*'] ?? '';
        let der: Uint8Array;
        try {
          // Clients may or may not percent-encode '/', '+' and '='; the router decodes once.
          const b64 = raw.length > MAX_GET_CHARS ? '' : decodeURIComponent(raw).replace(/\s/g, '+');
          der = /^[A-Za-z0-9+/_-]+={0,2}$/.test(b64) ? new Uint8Array(Buffer.from(b64, 'base64')) : new Uint8Array();
        } catch {
          der = new Uint8Array();
        }
        const answer = der.byteLength === 0 ? ocspError('malformedRequest') : await ca.ocsp(der);
        return reply.type('application/ocsp-response').header('cache-control', 'no-cache').send(ocspReply(answer));
      },
    );

    const requireAdmin = opts.requireAdmin;
    if (requireAdmin) {
      app.post(
        '/v1/ca/rotate',
        {
          schema: {
            summary: 'Replace the issuing intermediate (admin); issued certificates stay valid',
            tags: ['ca', 'admin'],
          },
        },
        async (req) => {
          await requireAdmin(req);
          await ca.rotate();
          return { rotated: true, issuers: ca.issuerIds() };
        },
      );
    }
  };
}
