import type { FastifyPluginAsync } from 'fastify';
import type {} from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ActiveDirectory } from './directory.js';
import { AnsErrors } from './errors.js';
import type { TextScreen } from './service.js';

/** What resolve needs from the semantic layer (`embeddings/` implements it). */
export interface SemanticSearch {
  search(
    query: string,
    opts: {
      k: number;
      filter?: { domain?: string; protocol?: string; skillTag?: string; allow?: (id: string) => boolean };
    },
  ): Promise<{ hits: { id: string; score: number }[]; reason?: string }>;
}

/** Signs answers (compact JWS) and publishes the keys that verify them. */
export interface AnswerSigner {
  sign(payload: Record<string, unknown>): Promise<string>;
  jwks(): { keys: object[] };
}

export interface ResolveResult {
  id: string;
  fqdn: string;
  name: string;
  score: number;
  endpoints: { protocol: string; url: string }[];
  domain: string;
  via: string | null;
}

export interface ResolveAnswer {
  query: string;
  results: ResolveResult[];
  reason?: string;
  jws: string;
}

export interface ResolverOptions {
  search: SemanticSearch;
  directory: ActiveDirectory;
  signer: AnswerSigner;
  screen: TextScreen;
  issuer: string;
  now?: () => Date;
  /** Agents of other domains learned through federation, already pointing at our gateway. */
  remote?: (query: string, opts: { k: number; domain?: string; protocol?: string }) => ResolveResult[];
}

/**
 * Plain-language resolve: screen the query, rank reachable active agents, sign the answer.
 * Only names and endpoints go out, never card prose, so card text cannot act as instructions.
 */
export class Resolver {
  constructor(private readonly o: ResolverOptions) {}

  async resolve(
    q: string,
    opts: { k: number; domain?: string; protocol?: string; skill?: string },
  ): Promise<ResolveAnswer> {
    const screened = this.o.screen(q);
    if (!screened.ok) throw AnsErrors.unsafeText('q', screened.reason);
    const query = screened.text;
    const dir = this.o.directory;
    const { hits, reason } = await this.o.search.search(query, {
      k: opts.k,
      filter: {
        ...(opts.domain ? { domain: opts.domain.toLowerCase().replace(/\.$/, '') } : {}),
        ...(opts.protocol ? { protocol: opts.protocol } : {}),
        ...(opts.skill ? { skillTag: opts.skill } : {}),
        allow: (id) => dir.reachable(id),
      },
    });
    const results: ResolveResult[] = [];
    for (const h of hits) {
      const a = dir.get(h.id);
      if (!a || !dir.reachable(h.id)) continue;
      const endpoints = a.card.endpoints
        .filter((e) => !opts.protocol || e.protocol === opts.protocol)
        .map((e) => ({ protocol: e.protocol, url: e.url }));
      results.push({
        id: a.id,
        fqdn: a.fqdn,
        name: a.card.name,
        score: Math.round(h.score * 1e4) / 1e4,
        endpoints,
        domain: a.zone,
        via: null,
      });
    }
    if (this.o.remote) {
      results.push(
        ...this.o.remote(query, {
          k: opts.k,
          ...(opts.domain ? { domain: opts.domain.toLowerCase().replace(/\.$/, '') } : {}),
          ...(opts.protocol ? { protocol: opts.protocol } : {}),
        }),
      );
      results.sort((a, b) => b.score - a.score);
      results.splice(opts.k);
    }
    const why = results.length === 0 ? (reason ?? 'no agent matches the query confidently') : undefined;
    const payload = {
      iss: this.o.issuer,
      iat: Math.floor((this.o.now?.() ?? new Date()).getTime() / 1000),
      query,
      results,
      ...(why ? { reason: why } : {}),
    };
    const jws = await this.o.signer.sign(payload);
    return { query, results, ...(why ? { reason: why } : {}), jws };
  }
}

export const resolveRoutes: FastifyPluginAsync<{
  resolver: Resolver;
  signer: AnswerSigner;
  perMinute: number;
}> = async (app0, opts) => {
  const app = app0.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/v1/resolve',
    {
      schema: {
        tags: ['resolve'],
        summary: 'Plain-language query -> ranked agents, signed (compact JWS)',
        querystring: Type.Object(
          {
            q: Type.String({ minLength: 1, maxLength: 1000 }),
            k: Type.Integer({ minimum: 1, maximum: 50, default: 5 }),
            domain: Type.Optional(Type.String({ maxLength: 253 })),
            protocol: Type.Optional(Type.Union([Type.Literal('a2a'), Type.Literal('mcp'), Type.Literal('http')])),
            skill: Type.Optional(Type.String({ maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
      },
      config: { rateLimit: { max: opts.perMinute, timeWindow: 60_000 } },
    },
    async (req) => {
      const { q, k, domain, protocol, skill } = req.query;
      return opts.resolver.resolve(q, {
        k,
        ...(domain ? { domain } : {}),
        ...(protocol ? { protocol } : {}),
        ...(skill ? { skill } : {}),
      });
    },
  );
  app.get('/.well-known/jwks.json', { schema: { tags: ['resolve'] } }, async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return opts.signer.jwks();
  });
};
