/** The federation error catalogue (AMSP). Codes are stable; retired codes are never reused. */
import { defineError } from '../errors/index.js';

export const FedErrors = {
  badMessage: defineError('FED_ERR_BAD_MESSAGE', 400, (why: string) => `malformed AMSP message: ${why}`),
  badVersion: defineError(
    'FED_ERR_BAD_VERSION',
    400,
    (v: string) => `unsupported AMSP version '${v}' (this gateway speaks 1)`,
  ),
  untrusted: defineError('FED_ERR_UNTRUSTED_PEER', 403, (why: string) => `peer not trusted: ${why}`),
  badSignature: defineError('FED_ERR_BAD_SIGNATURE', 403, (why: string) => `signature check failed: ${why}`),
  noSession: defineError(
    'FED_ERR_NO_SESSION',
    409,
    (peer: string) => `no established AMSP session with ${peer}: send OPEN first`,
  ),
  notPeer: defineError(
    'FED_ERR_NOT_A_PEER',
    403,
    (peer: string) => `${peer} is not a configured peer of this Level-1 gateway`,
  ),
  noIdentity: defineError(
    'FED_ERR_NO_IDENTITY',
    503,
    () => 'this gateway has no AMSP identity yet (the CA cannot issue)',
  ),
  starting: defineError('FED_ERR_STARTING', 503, () => 'this gateway is starting: OPEN again in a moment'),
  badRelay: defineError(
    'FED_ERR_BAD_RELAY',
    401,
    (why: string) => `the relay credential of the peer gateway is not valid: ${why}`,
  ),
  noClientCert: defineError(
    'FED_ERR_NO_CLIENT_CERT',
    401,
    (peer: string) => `${peer}: gateway-to-gateway HTTPS needs the gateway certificate as TLS client certificate`,
  ),
  relayLoop: defineError('FED_ERR_RELAY_LOOP', 508, (why: string) => `the call would loop between gateways: ${why}`),
  tooManySubscriptions: defineError(
    'FED_ERR_TOO_MANY_SUBSCRIPTIONS',
    429,
    (max: number) => `subscription limit reached (${max} topics per peer)`,
  ),
  subscriptionRate: defineError(
    'FED_ERR_SUBSCRIPTION_RATE',
    429,
    (perMinute: number) => `subscribing too fast (at most ${perMinute} topics a minute per peer)`,
  ),
} as const;
