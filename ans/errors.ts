import { defineError } from '../src/errors/index.js';

/** The registry's error catalogue. Codes are stable; a retired code is never reused. */
export const AnsErrors = {
  notFound: defineError('ANS_ERR_NOT_FOUND', 404, (id: string) => `no agent with id '${id}'`),
  invalidCard: defineError('ANS_ERR_INVALID_CARD', 400, (why: string) => `invalid agent card: ${why}`),
  labelTaken: defineError('ANS_ERR_LABEL_TAKEN', 409, (fqdn: string) => `the name '${fqdn}' is already registered`),
  illegalTransition: defineError(
    'ANS_ERR_ILLEGAL_TRANSITION',
    409,
    (from: string, action: string) => `cannot ${action} an agent that is ${from}`,
  ),
  notActive: defineError('ANS_ERR_NOT_ACTIVE', 409, (status: string) => `the agent is ${status}, not active`),
  incompatible: defineError(
    'ANS_ERR_INCOMPATIBLE_CHANGE',
    409,
    (why: string) => `incompatible change (${why}) needs a new major version`,
  ),
  versionNotNewer: defineError(
    'ANS_ERR_VERSION_NOT_NEWER',
    409,
    (next: string, cur: string) => `version ${next} is not newer than the current ${cur}`,
  ),
  labelReserved: defineError(
    'ANS_ERR_LABEL_RESERVED',
    409,
    (label: string) => `the label '${label}' is reserved for ANS itself (name server, federation gateway)`,
  ),
  labelChange: defineError(
    'ANS_ERR_LABEL_IMMUTABLE',
    409,
    () => 'the label is the agent name and cannot change; register a new agent instead',
  ),
  unsafeText: defineError('ANS_ERR_UNSAFE_TEXT', 400, (field: string, why: string) => `${field}: ${why}`),
  unauthorized: defineError('ANS_ERR_UNAUTHORIZED', 401, (why: string) => why),
  forbidden: defineError('ANS_ERR_FORBIDDEN', 403, (why: string) => why),
  replayed: defineError('ANS_ERR_TOKEN_REPLAYED', 401, () => 'this token (jti) has already been used'),
  tokenNameTaken: defineError(
    'ANS_ERR_TOKEN_NAME_TAKEN',
    409,
    (name: string) => `an admin token named '${name}' already exists`,
  ),
  tokenNotFound: defineError('ANS_ERR_TOKEN_NOT_FOUND', 404, (name: string) => `no admin token named '${name}'`),
  badCursor: defineError('ANS_ERR_BAD_CURSOR', 400, () => 'the cursor is not one this server handed out'),
} as const;
