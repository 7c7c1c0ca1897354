/** The receiving side of AMSP v1: thin handlers that decode, then hand to the speaker. */
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { tlsClientOf } from './mtls.js';
import type { Federation } from './speaker.js';

const JWS = Type.String({ minLength: 10, maxLength: 32 * 1024 * 1024 });

export const amspRoutes: FastifyPluginAsync<{ federation: Federation }> = async (app0, { federation }) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/amsp/v1/open',
    {
      schema: {
        tags: ['federation'],
        summary: 'AMSP OPEN: identify, get the peer OPEN back',
        body: Type.Object({ open: JWS }, { additionalProperties: false }),
      },
    },
    async (req) => ({ open: await federation.acceptOpen(req.body.open, tlsClientOf(req.raw.socket)) }),
  );
  app.post(
    '/amsp/v1/messages',
    {
      bodyLimit: 32 * 1024 * 1024,
      schema: {
        tags: ['federation'],
        summary: 'AMSP envelope: a signed batch of messages',
        body: Type.Object({ envelope: JWS }, { additionalProperties: false }),
      },
    },
    async (req) => ({ ok: true, ...(await federation.receive(req.body.envelope, tlsClientOf(req.raw.socket))) }),
  );
  app.get(
    '/amsp/v1/routes',
    { schema: { tags: ['federation'], summary: 'Forwarding table, peers and counters' } },
    async () => federation.view(),
  );
};
