import { Type, type Static } from '@sinclair/typebox';

/**
 * The agent card: the body of a registration. Field names follow the A2A AgentCard where the
 * two overlap; anything not listed here is rejected (additionalProperties: false).
 */
export const LABEL_PATTERN = '^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$';
const SEMVER_PATTERN = '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?$';

export const Protocol = Type.Union([Type.Literal('a2a'), Type.Literal('mcp'), Type.Literal('http')]);
export type Protocol = Static<typeof Protocol>;

export const Skill = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 2000 }),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
    examples: Type.Optional(Type.Array(Type.String({ maxLength: 500 }), { maxItems: 16 })),
    requireHumanApproval: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type Skill = Static<typeof Skill>;

export const Endpoint = Type.Object(
  {
    protocol: Protocol,
    url: Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' }),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    weight: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  },
  { additionalProperties: false },
);
export type Endpoint = Static<typeof Endpoint>;

export const AgentCard = Type.Object(
  {
    label: Type.String({ pattern: LABEL_PATTERN, maxLength: 63 }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 4000 }),
    version: Type.String({ pattern: SEMVER_PATTERN, maxLength: 64 }),
    provider: Type.Optional(
      Type.Object(
        {
          organization: Type.String({ minLength: 1, maxLength: 200 }),
          url: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048 })),
        },
        { additionalProperties: false },
      ),
    ),
    skills: Type.Array(Skill, { minItems: 1, maxItems: 64 }),
    endpoints: Type.Array(Endpoint, { minItems: 1, maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type AgentCard = Static<typeof AgentCard>;
