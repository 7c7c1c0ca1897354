import { defineError } from '../src/errors/index.js';

/**
 * The CA's error catalogue. Codes are stable; a retired code is never reused (list retired codes
 * at the bottom). Client mistakes are 4xx with a message that says what to fix; the internal
 * cause (a library exception) is never part of the message.
 */
export const CaErrors = {
  // --- CSR checks (policy.ts) ---
  csrNotPem: defineError(
    'CA_ERR_CSR_NOT_PEM',
    400,
    () => "the CSR is not a PEM PKCS#10 request ('-----BEGIN CERTIFICATE REQUEST-----')",
  ),
  csrTooLarge: defineError(
    'CA_ERR_CSR_TOO_LARGE',
    413,
    (size: number, max: number) => `the CSR is ${size} bytes; at most ${max} are accepted`,
  ),
  csrMalformed: defineError(
    'CA_ERR_CSR_MALFORMED',
    400,
    (why: string) => `the CSR is not a valid DER PKCS#10 request: ${why}`,
  ),
  csrSignature: defineError(
    'CA_ERR_CSR_SIGNATURE',
    400,
    () => 'the CSR signature does not verify with the key it carries',
  ),
  csrSignatureAlg: defineError(
    'CA_ERR_CSR_SIGNATURE_ALG',
    400,
    (oid: string) =>
      `the CSR signature algorithm ${oid} is not accepted (use ECDSA with SHA-256/384/512, Ed25519 or RSA PKCS#1 v1.5 with SHA-256/384/512)`,
  ),
  keyNotAllowed: defineError(
    'CA_ERR_KEY_NOT_ALLOWED',
    400,
    (what: string) => `key not allowed: ${what}; allowed are ECDSA P-256, P-384, Ed25519 and RSA 2048-8192 bits`,
  ),
  keyCompromised: defineError(
    'CA_ERR_KEY_COMPROMISED',
    400,
    () => 'this public key belongs to a certificate revoked for keyCompromise and can never be certified again',
  ),
  csrNames: defineError(
    'CA_ERR_CSR_NAMES',
    400,
    (why: string, fqdn: string) => `the CSR names must be exactly '${fqdn}': ${why}`,
  ),
  csrCriticalExtension: defineError(
    'CA_ERR_CSR_CRITICAL_EXTENSION',
    400,
    (oid: string) => `the CSR requests the unknown critical extension ${oid}`,
  ),
  nameOutsideZone: defineError(
    'CA_ERR_NAME_OUTSIDE_ZONE',
    400,
    (fqdn: string, zone: string) => `'${fqdn}' is not a name inside the zone '${zone}'`,
  ),
  uriInvalid: defineError(
    'CA_ERR_URI_INVALID',
    400,
    (uri: string, zone: string) => `the URI '${uri}' must be an absolute URI whose host is inside the zone '${zone}'`,
  ),

  // --- revocation and status ---
  badReason: defineError(
    'CA_ERR_BAD_REASON',
    400,
    (reason: string) => `'${reason}' is not an RFC 5280 revocation reason name (e.g. keyCompromise, superseded)`,
  ),
  badSerial: defineError(
    'CA_ERR_BAD_SERIAL',
    400,
    (serial: string) => `'${serial}' is not a certificate serial (lower-case hex)`,
  ),
  unknownSerial: defineError('CA_ERR_UNKNOWN_SERIAL', 404, (serial: string) => `no certificate with serial ${serial}`),
  alreadyRevoked: defineError(
    'CA_ERR_ALREADY_REVOKED',
    409,
    (serial: string) => `the certificate ${serial} is already revoked`,
  ),
  unknownIssuer: defineError('CA_ERR_UNKNOWN_ISSUER', 404, (id: string) => `no issuing CA with id '${id}'`),

  // --- client authentication (verifyClient) ---
  chainInvalid: defineError(
    'CA_ERR_CHAIN_INVALID',
    401,
    (why: string) => `the client certificate chain is not valid: ${why}`,
  ),

  // --- operating state ---
  noPassphrase: defineError(
    'CA_ERR_NO_PASSPHRASE',
    503,
    () =>
      'the CA cannot sign: no CA passphrase was given (set ANS_CA_PASSPHRASE or the passphrase file); DNS, resolve, CRL and OCSP keep working',
  ),
  notInitialized: defineError(
    'CA_ERR_NOT_INITIALIZED',
    503,
    () => 'the CA has not been created yet: start once with a CA passphrase so the keys can be stored encrypted',
  ),
  passphraseWrong: defineError(
    'CA_ERR_PASSPHRASE_WRONG',
    500,
    (what: string) =>
      `the CA passphrase does not decrypt the stored ${what} key; start with the passphrase it was created with`,
  ),
  badConfig: defineError('CA_ERR_CONFIG', 500, (why: string) => `bad CA configuration: ${why}`),
  noIssuer: defineError(
    'CA_ERR_NO_VALID_ISSUER',
    503,
    () => 'the issuing CA certificate has expired; run `ans ca rotate`',
  ),
} as const;

// Retired codes (never reuse): none yet.
