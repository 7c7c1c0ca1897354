import { decodeProtectedHeader, jwtVerify, errors as joseErrors } from 'jose';
import type { VerifiedClient } from '../../ca/index.js';
import { AuthErrors } from './errors.js';

/** What agent authentication needs from the CA. */
export interface ClientVerifier {
  verifyClient(x5c: readonly string[]): Promise<VerifiedClient>;
}

export interface AgentClaims {
  agentId: string;
  fqdn: string;
  serial: string;
  jti: string;
  exp: Date;
}

const MAX_LIFETIME_S = 300;
const SKEW_S = 30;

/**
 * Verifies an agent's bearer JWT: signed by the key of its ANS certificate (x5c = [leaf, issuing
 * CA]), `sub` = the agent id the certificate was issued to, `aud` = the zone, lifetime <= 5 min.
 * Replay (jti) is the caller's concern: registry changes spend it, the gateway does not.
 */
export async function verifyAgentJwt(
  token: string,
  opts: { verifier: ClientVerifier; zone: string; now?: () => Date },
): Promise<AgentClaims> {
  let x5c: unknown;
  try {
    x5c = decodeProtectedHeader(token).x5c;
  } catch {
    throw AuthErrors.badAgentToken('not a JWS');
  }
  if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > 3 || !x5c.every((c) => typeof c === 'string')) {
    throw AuthErrors.badAgentToken('header x5c must carry [certificate, issuing CA]');
  }
  let client;
  try {
    client = await opts.verifier.verifyClient(x5c as string[]);
  } catch (e) {
    throw AuthErrors.badAgentToken(`certificate not trusted (${(e as Error).message})`);
  }
  if (client.status !== 'good') throw AuthErrors.badAgentToken(`certificate is ${client.status}`);
  const zone = opts.zone.replace(/\.$/, '');
  const now = opts.now?.() ?? new Date();
  let payload;
  try {
    ({ payload } = await jwtVerify(token, client.publicKey, {
      algorithms: [client.alg],
      audience: [zone, `${zone}.`],
      clockTolerance: SKEW_S,
      currentDate: now,
      requiredClaims: ['sub', 'iat', 'exp', 'jti'],
    }));
  } catch (e) {
    const why =
      e instanceof joseErrors.JWTExpired ? 'expired' : e instanceof joseErrors.JOSEError ? e.message : 'invalid';
    throw AuthErrors.badAgentToken(why);
  }
  const { sub, iat, exp, jti } = payload as { sub: string; iat: number; exp: number; jti: string };
  if (sub !== client.subjectId) throw AuthErrors.badAgentToken('sub is not the agent the certificate was issued to');
  if (exp - iat > MAX_LIFETIME_S) throw AuthErrors.badAgentToken(`lifetime over ${MAX_LIFETIME_S} s`);
  if (iat > now.getTime() / 1000 + SKEW_S) throw AuthErrors.badAgentToken('issued in the future');
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 128)
    throw AuthErrors.badAgentToken('jti missing or malformed');
  return { agentId: sub, fqdn: client.fqdn, serial: client.serial, jti, exp: new Date(exp * 1000) };
}
