/** JSON schemas of AMSP v1 payloads (TypeBox) and the checks run on every decoded payload. */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { FedErrors } from './errors.js';
import { AMSP_VERSION, type AgentRecord, type Envelope, type Message, type OpenPayload } from './types.js';

const Uri = Type.String({ minLength: 8, maxLength: 512, pattern: '^https?://' });
const Str = (max: number) => Type.String({ maxLength: max });

export const OpenSchema = Type.Object({
  type: Type.Literal('OPEN'),
  version: Type.Integer(),
  gateway: Uri,
  zone: Str(253),
  role: Type.Union([Type.Literal('l1'), Type.Literal('l2')]),
  holdTime: Type.Integer({ minimum: 3, maximum: 3600 }),
  aud: Uri,
  iat: Type.Integer(),
  nonce: Type.String({ minLength: 8, maxLength: 64 }),
});

const Skill = Type.Object({
  id: Str(64),
  name: Str(200),
  description: Type.Optional(Str(4000)),
  tags: Type.Optional(Type.Array(Str(64), { maxItems: 32 })),
});

export const RecordSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  fqdn: Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9.-]+$' }),
  domain: Type.String({ minLength: 1, maxLength: 253 }),
  name: Str(200),
  version: Str(64),
  description: Type.Optional(Str(8000)),
  skills: Type.Optional(Type.Array(Skill, { maxItems: 64 })),
  tags: Type.Array(Str(64), { maxItems: 256 }),
  protocols: Type.Array(Str(16), { maxItems: 8 }),
  endpoints: Type.Array(Type.Object({ protocol: Str(16), url: Uri }), { maxItems: 16 }),
  origin: Uri,
  seq: Type.Integer({ minimum: 0 }),
  embedding: Type.Optional(Type.Object({ embedder: Str(128), vector: Type.Array(Type.Number(), { maxItems: 4096 }) })),
});

const MessageSchema = Type.Union([
  Type.Object({ type: Type.Literal('KEEPALIVE') }),
  Type.Object({
    type: Type.Literal('UPDATE'),
    path: Type.Array(Uri, { minItems: 1, maxItems: 32 }),
    record: Type.String({ maxLength: 65_536 }),
  }),
  Type.Object({ type: Type.Literal('WITHDRAW'), id: Type.String({ minLength: 1, maxLength: 128 }) }),
  Type.Object({ type: Type.Literal('END_OF_RIB') }),
  Type.Object({
    type: Type.Literal('CHAIN'),
    x5c: Type.Array(Type.String({ maxLength: 16_384 }), { minItems: 2, maxItems: 4 }),
  }),
  Type.Object({ type: Type.Literal('SUBSCRIBE'), topics: Type.Array(Str(253), { maxItems: 256 }) }),
  Type.Object({ type: Type.Literal('UNSUBSCRIBE'), topics: Type.Array(Str(253), { maxItems: 256 }) }),
  Type.Object({
    type: Type.Literal('NOTIFICATION'),
    code: Type.Union(
      ['CEASE', 'HOLD_TIMER_EXPIRED', 'BAD_MESSAGE', 'UNTRUSTED', 'RATE_LIMITED'].map((c) => Type.Literal(c)),
    ),
    reason: Str(500),
  }),
]);

export const EnvelopeSchema = Type.Object({
  iss: Uri,
  aud: Uri,
  sid: Type.String({ minLength: 8, maxLength: 64 }),
  n: Type.Integer({ minimum: 1 }),
  iat: Type.Integer(),
  messages: Type.Array(MessageSchema, { maxItems: 5000 }),
});

function check<S extends TSchema>(schema: S, v: unknown, what: string): Static<S> {
  if (!Value.Check(schema, v)) {
    const first = Value.Errors(schema, v).First();
    throw FedErrors.badMessage(`${what}${first ? ` ${first.path || '/'}: ${first.message}` : ''}`);
  }
  return v;
}

export function parseOpen(v: unknown): OpenPayload {
  const o = check(OpenSchema, v, 'OPEN');
  if (o.version !== AMSP_VERSION) throw FedErrors.badVersion(String(o.version));
  return o;
}

export function parseEnvelope(v: unknown): Envelope {
  return check(EnvelopeSchema, v, 'envelope') as Envelope;
}

export function parseRecord(v: unknown): AgentRecord {
  return check(RecordSchema, v, 'record');
}

export type { Message };
