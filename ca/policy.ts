/**
 * CSR policy: parse a PEM PKCS#10 request once, then run it through a list of small validators
 * (step-ca's SignOption idea). Each validator throws one CA_ERR_* client error or returns.
 * The store-backed check (a key revoked for keyCompromise) lives in the authority, which owns
 * the database; everything here is pure.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaErrors } from './errors.js';
import { OID, fromPemAll, hex, parseDer, sha256, spkiDer, verifiableAlgorithm, verifyBytes } from './x509.js';

export const MAX_CSR_BYTES = 64 * 1024;
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 8192;

export type KeyKind = 'P-256' | 'P-384' | 'Ed25519' | 'RSA';

export interface ParsedCsr {
  csr: pkijs.CertificationRequest;
  spki: pkijs.PublicKeyInfo;
  spkiDer: Uint8Array;
  spkiSha256: string;
  /** undefined when node:crypto cannot even load the key (then keyAllowed rejects it). */
  publicKey: KeyObject | undefined;
  /** Common names in the subject (normally zero or one). */
  commonNames: string[];
  /** Requested extensions (PKCS#9 extensionRequest), empty when none. */
  requested: pkijs.Extension[];
}

export interface CsrContext {
  /** Lower case, no trailing dot. */
  fqdn: string;
  /** Lower case, no trailing dot. */
  zone: string;
}

export type CsrValidator = (csr: ParsedCsr, ctx: CsrContext) => void;

/** Lower-cases a DNS name and drops one trailing dot. */
export function normalizeName(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** Size, PEM framing and DER structure; throws CA_ERR_CSR_{TOO_LARGE,NOT_PEM,MALFORMED}. */
export function parseCsr(pem: string): ParsedCsr {
  if (typeof pem !== 'string') throw CaErrors.csrNotPem();
  const size = Buffer.byteLength(pem, 'utf8');
  if (size > MAX_CSR_BYTES) throw CaErrors.csrTooLarge(size, MAX_CSR_BYTES);
  const blocks = fromPemAll(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  if (blocks.length !== 1) {
    if (blocks.length > 1) throw CaErrors.csrMalformed('more than one request in the PEM');
    throw CaErrors.csrNotPem();
  }
  const der = blocks[0]!;
  let csr: pkijs.CertificationRequest;
  try {
    csr = new pkijs.CertificationRequest({ schema: parseDer(der) });
  } catch {
    throw CaErrors.csrMalformed('the DER does not decode as a PKCS#10 CertificationRequest');
  }
  if (csr.version !== 0) throw CaErrors.csrMalformed(`version ${csr.version} (only v1 exists)`);
  const spki = csr.subjectPublicKeyInfo;
  let der2: Uint8Array;
  try {
    der2 = spkiDer(spki);
  } catch {
    throw CaErrors.csrMalformed('the public key does not encode');
  }
  let publicKey: KeyObject | undefined;
  try {
    publicKey = createPublicKey({ key: Buffer.from(der2), format: 'der', type: 'spki' });
  } catch {
    publicKey = undefined;
  }
  const commonNames: string[] = [];
  for (const tv of csr.subject.typesAndValues) {
    if (tv.type !== OID.commonName) continue;
    const v: unknown = (tv.value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
    if (typeof v !== 'string') throw CaErrors.csrMalformed('the subject common name is not a string');
    commonNames.push(v);
  }
  const requested: pkijs.Extension[] = [];
  const extAttrs = (csr.attributes ?? []).filter((a) => a.type === OID.extensionRequest);
  if (extAttrs.length > 1 || (extAttrs[0] && extAttrs[0].values.length !== 1)) {
    throw CaErrors.csrMalformed('more than one extensionRequest attribute');
  }
  if (extAttrs[0]) {
    try {
      requested.push(...new pkijs.Extensions({ schema: extAttrs[0].values[0] as asn1js.Sequence }).extensions);
    } catch {
      throw CaErrors.csrMalformed('the extensionRequest attribute does not decode');
    }
  }
  return { csr, spki, spkiDer: der2, spkiSha256: hex(sha256(der2)), publicKey, commonNames, requested };
}

// ---------------------------------------------------------------- validators

/** Allowed keys: ECDSA P-256/P-384, Ed25519, RSA 2048-8192 bits. */
export const keyAllowed: CsrValidator = (c) => {
  const k = c.publicKey;
  if (!k) throw CaErrors.keyNotAllowed(`unsupported key algorithm ${c.spki.algorithm.algorithmId}`);
  switch (k.asymmetricKeyType) {
    case 'ec': {
      const curve = k.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1' || curve === 'secp384r1') return;
      throw CaErrors.keyNotAllowed(`ECDSA curve ${curve ?? 'unknown'}`);
    }
    case 'ed25519':
      return;
    case 'rsa': {
      const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS) return;
      throw CaErrors.keyNotAllowed(`RSA ${bits} bits`);
    }
    default:
      throw CaErrors.keyNotAllowed(`${k.asymmetricKeyType ?? 'unknown'} keys`);
  }
};

/** Proof of possession: the request is signed by the key it carries. */
export const signatureValid: CsrValidator = (c) => {
  const oid = c.csr.signatureAlgorithm.algorithmId;
  if (!verifiableAlgorithm(oid)) throw CaErrors.csrSignatureAlg(oid);
  const ok =
    c.publicKey !== undefined &&
    verifyBytes(oid, c.publicKey, c.csr.tbsView, c.csr.signatureValue.valueBlock.valueHexView);
  if (!ok) throw CaErrors.csrSignature();
};

/** The name must be inside the zone (the intermediate's name constraint would refuse it anyway). */
export const nameInZone: CsrValidator = (_c, ctx) => {
  const { fqdn, zone } = ctx;
  const labels = fqdn.split('.');
  const okLabels = labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
  if (!okLabels || fqdn.length > 253 || !fqdn.endsWith(`.${zone}`)) throw CaErrors.nameOutsideZone(fqdn, zone);
};

/** CN, if present, is the FQDN; a SAN request holds only that one dNSName. */
export const namesExact: CsrValidator = (c, ctx) => {
  const { fqdn } = ctx;
  if (c.commonNames.length > 1) throw CaErrors.csrNames('the subject has several common names', fqdn);
  const cn = c.commonNames[0];
  if (cn !== undefined && normalizeName(cn) !== fqdn) throw CaErrors.csrNames(`the common name is '${cn}'`, fqdn);
  const sans = c.requested.filter((e) => e.extnID === OID.subjectAltName);
  if (sans.length > 1) throw CaErrors.csrNames('several subjectAltName extensions', fqdn);
  if (sans[0]) {
    let names: pkijs.GeneralName[];
    try {
      names = new pkijs.AltName({ schema: parseDer(sans[0].extnValue.valueBlock.valueHexView) }).altNames;
    } catch {
      throw CaErrors.csrMalformed('the subjectAltName request does not decode');
    }
    for (const n of names) {
      if (n.type !== 2) throw CaErrors.csrNames(`the SAN request holds a name of type ${generalNameType(n.type)}`, fqdn);
      if (typeof n.value !== 'string' || normalizeName(n.value) !== fqdn) {
        throw CaErrors.csrNames(`the SAN request holds '${String(n.value)}'`, fqdn);
      }
    }
  }
};

/** Extensions a CSR may ask for; we set our own values, so these are only tolerated. */
const KNOWN_REQUESTED = new Set<string>([
  OID.subjectAltName,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.basicConstraints,
  OID.subjectKeyIdentifier,
]);

export const noUnknownCritical: CsrValidator = (c) => {
  for (const e of c.requested) {
    if (e.critical && !KNOWN_REQUESTED.has(e.extnID)) throw CaErrors.csrCriticalExtension(e.extnID);
  }
};

/** The order is the order of the errors a client sees first. */
export const CSR_VALIDATORS: readonly CsrValidator[] = [keyAllowed, signatureValid, nameInZone, namesExact, noUnknownCritical];

/** Parses and checks a CSR against every validator; returns the parsed request. */
export function checkCsrPure(pem: string, ctx: CsrContext, validators: readonly CsrValidator[] = CSR_VALIDATORS): ParsedCsr {
  const parsed = parseCsr(pem);
  for (const v of validators) v(parsed, ctx);
  return parsed;
}

function generalNameType(t: number): string {
  return ['otherName', 'rfc822Name', 'dNSName', 'x400Address', 'directoryName', 'ediPartyName', 'URI', 'iPAddress', 'registeredID'][t] ?? String(t);
}
