import { defineError } from '../errors/index.js';

/**
 * The gateway's error catalogue. Codes are stable; a retired code is never reused (list it in
 * RETIRED below). Each renders as RFC 9457 problem+json through the one HTTP error handler, or
 * through `sendProblem` on the proxy's hot path.
 */
export const GatewayErrors = {
  badName: defineError('GW_ERR_BAD_NAME', 400, (why: string) => `the target name is not valid: ${why}`),
  badPath: defineError('GW_ERR_BAD_PATH', 400, (why: string) => `the path is not allowed: ${why}`),
  badHeader: defineError('GW_ERR_BAD_HEADER', 400, (name: string) => `header '${name}' is not allowed`),
  outsideZone: defineError(
    'GW_ERR_OUTSIDE_ZONE',
    404,
    (fqdn: string, zone: string) => `${fqdn} is not in this gateway's zone ${zone}`,
  ),
  unknownAgent: defineError('GW_ERR_UNKNOWN_AGENT', 404, (fqdn: string) => `no agent is registered as ${fqdn}`),
  noEndpoint: defineError(
    'GW_ERR_NO_ENDPOINT',
    404,
    (fqdn: string, protocol: string) => `${fqdn} has no ${protocol} endpoint`,
  ),
  notActive: defineError(
    'GW_ERR_NOT_ACTIVE',
    409,
    (fqdn: string, status: string) => `${fqdn} is ${status}, not active`,
  ),
  offline: defineError('GW_ERR_OFFLINE', 503, (fqdn: string) => `${fqdn} is offline (missed heartbeats)`),
  unreachable: defineError(
    'GW_ERR_UNREACHABLE',
    503,
    (fqdn: string, why: string) => `${fqdn} cannot be reached: ${why}`,
  ),
  badUpstream: defineError('GW_ERR_BAD_UPSTREAM', 502, (fqdn: string, why: string) => `${fqdn} answered badly: ${why}`),
  upstreamTimeout: defineError(
    'GW_ERR_UPSTREAM_TIMEOUT',
    504,
    (fqdn: string, what: string) => `${fqdn} did not answer in time (${what})`,
  ),
  noCredential: defineError(
    'GW_ERR_NO_CREDENTIAL',
    401,
    () => 'the gateway needs Authorization: Bearer <agent JWT>, or a TLS client certificate issued by the ANS CA',
  ),
  badClientCert: defineError(
    'GW_ERR_BAD_CLIENT_CERT',
    401,
    (why: string) => `the TLS client certificate is not trusted: ${why}`,
  ),
  clientCertRefused: defineError(
    'GW_ERR_CLIENT_CERT_REFUSED',
    403,
    (why: string) => `the TLS client certificate is refused: ${why}`,
  ),
  badCredential: defineError('GW_ERR_BAD_CREDENTIAL', 401, (why: string) => `the agent token is not valid: ${why}`),
  callerNotActive: defineError(
    'GW_ERR_CALLER_NOT_ACTIVE',
    401,
    () => 'the calling agent is not active (revoked, suspended or deregistered)',
  ),
  agentsOnly: defineError('GW_ERR_AGENTS_ONLY', 403, () => 'the gateway takes agent credentials, not admin tokens'),
  denied: defineError(
    'GW_ERR_DENIED',
    403,
    (caller: string, target: string, why: string) => `${caller} may not call ${target} (${why})`,
  ),
  approvalDenied: defineError('GW_ERR_APPROVAL_DENIED', 403, (id: string) => `a human denied the call (ticket ${id})`),
  approvalTimeout: defineError(
    'GW_ERR_APPROVAL_TIMEOUT',
    504,
    (id: string) => `no human decided in time (ticket ${id})`,
  ),
  tooManyApprovals: defineError(
    'GW_ERR_APPROVALS_FULL',
    503,
    () => 'too many calls are waiting for human approval; retry later',
  ),
  rateLimited: defineError(
    'GW_ERR_RATE_LIMITED',
    429,
    (caller: string) => `${caller} sends too many requests; retry later`,
  ),
  bodyTooLarge: defineError('GW_ERR_BODY_TOO_LARGE', 413, (limit: number) => `the request body is over ${limit} bytes`),
  clientTimeout: defineError('GW_ERR_CLIENT_TIMEOUT', 408, () => 'the request body stalled'),
  noSkill: defineError('GW_ERR_NO_SKILL', 404, (skill: string) => `no reachable agent offers the skill '${skill}'`),
  noIntentMatch: defineError('GW_ERR_NO_INTENT_MATCH', 404, (why: string) => `no agent matches the intent: ${why}`),
  badRpc: defineError('GW_ERR_BAD_RPC', 400, (why: string) => `not a routable A2A JSON-RPC request: ${why}`),
  unknownPolicy: defineError('GW_ERR_UNKNOWN_POLICY', 404, (id: string) => `no policy ${id}`),
  badPolicy: defineError('GW_ERR_BAD_POLICY', 400, (why: string) => `the policy is not valid: ${why}`),
  unknownTicket: defineError('GW_ERR_UNKNOWN_TICKET', 404, (id: string) => `no approval ticket ${id} is waiting`),
} as const;

/** Codes that were used once and must never be given a new meaning. */
export const RETIRED: readonly string[] = [];
