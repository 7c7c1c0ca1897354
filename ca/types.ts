import type { KeyObject } from 'node:crypto';
import type { Db } from '../src/store/index.js';

export interface CaOptions {
  db: Db;
  /** e.g. 'agents.internal.'; the name constraint is the zone without the trailing dot. */
  zone: string;
  /** Base for the CRL DP (`${publicUrl}/v1/ca/crl/...`) and AIA OCSP (`${publicUrl}/v1/ca/ocsp`). */
  publicUrl: string;
  /** Protects the CA keys at rest; undefined => serves chain/CRL/OCSP but refuses to issue (503). */
  passphrase: string | undefined;
  /** Leaf validity, default 30, at most 397. */
  validityDays?: number;
  /** Tests control time. */
  now?: () => Date;
  /** How stale a cached status/CRL may get before the store is asked again (default 250 ms). */
  recheckMs?: number;
}

export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** RFC 5280 5.3.1 CRLReason codes (7 is unused). */
export const REASON_CODE: Record<RevocationReason, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

export function isRevocationReason(s: string): s is RevocationReason {
  return (REVOCATION_REASONS as readonly string[]).includes(s);
}

export interface IssuedCertificate {
  serial: string; // hex, lower case
  pem: string;
  chainPem: string;
  notBefore: Date;
  notAfter: Date;
  spkiSha256: string; // hex, for DNS TLSA 3 1 1
}

export interface CertificateStatus extends IssuedCertificate {
  subjectId: string;
  status: 'good' | 'revoked' | 'expired';
  revokedAt?: Date;
  reason?: RevocationReason;
}

export interface VerifiedClient {
  serial: string;
  subjectId: string;
  fqdn: string;
  status: 'good' | 'revoked' | 'expired';
  publicKey: KeyObject;
  alg: 'ES256' | 'ES384' | 'EdDSA' | 'RS256';
}
