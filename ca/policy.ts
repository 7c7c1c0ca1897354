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
import { OID, fromPemAll, hex, parseDer, sha256, verifiableAlgorithm, verifyBytes } from './x509.js';

export const MAX_CSR_BYTES = 64 * 1024;
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 8192;

export type KeyKind = 'P-256' | 'P-384' | 'Ed25519' | 'RSA';

export interface ParsedCsr {
  /** The DER CertificationRequestInfo (what the signature covers). */
  tbs: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** The public key's algorithm OID (for messages). */
  keyAlgorithm: string;
  /** Canonical DER SubjectPublicKeyInfo (what the certificate carries and spkiSha256 hashes). */
  spkiDer: Uint8Array;
  /** The subjectPublicKey BIT STRING contents (for the subject key identifier). */
  keyBits: Uint8Array;
  spkiSha256: string;
  /** undefined when node:crypto cannot even load the key (then keyAllowed rejects it). */
  publicKey: KeyObject | undefined;
  /** An allowed kind, or the reason the key is not allowed. */
  key: { kind: KeyKind } | { kind: undefined; why: string };
  /** Common names in the subject (normally zero or one). */
  commonNames: string[];
  /** Requested extensions (PKCS#9 extensionRequest), empty when none. */
  requested: RequestedExtension[];
}

/** One Extension of an extensionRequest: its OID, criticality and the extnValue contents. */
export interface RequestedExtension {
  extnID: string;
  critical: boolean;
  value: Uint8Array;
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

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const CURVES: Record<string, { kind: 'P-256' | 'P-384'; crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { kind: 'P-256', crv: 'P-256', size: 32 },
  '1.3.132.0.34': { kind: 'P-384', crv: 'P-384', size: 48 },
};

/**
 * The canonical SPKI for an algorithm, minus the key bits: encoded once with asn1js around a
 * dummy key of the right length, then cut where the key starts.
 */
const spkiPrefixes = new Map<string, Uint8Array>();
function spkiPrefix(algOid: string, paramOid: string | undefined, keyLen: number): Uint8Array {
  const k = `${algOid}/${paramOid ?? ''}/${keyLen}`;
  let p = spkiPrefixes.get(k);
  if (!p) {
    const der = new Uint8Array(
      new pkijs.PublicKeyInfo({
        algorithm: new pkijs.AlgorithmIdentifier({
          algorithmId: algOid,
          ...(paramOid ? { algorithmParams: new asn1js.ObjectIdentifier({ value: paramOid }) } : {}),
        }),
        subjectPublicKey: new asn1js.BitString({ valueHex: new Uint8Array(keyLen).buffer }),
      })
        .toSchema()
        .toBER(false),
    );
    p = der.slice(0, der.byteLength - keyLen);
    spkiPrefixes.set(k, p);
  }
  return p;
}

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.byteLength + b.byteLength);
  o.set(a, 0);
  o.set(b, a.byteLength);
  return o;
}

/**
 * Loads the public key. P-256/P-384 (uncompressed points) and Ed25519 go through JWK, which is
 * about twice as fast in node:crypto as decoding SPKI DER, and get their canonical SPKI from a
 * fixed prefix; anything else is decoded from the SPKI DER and re-exported canonically.
 */
function loadKey(
  algOid: string,
  paramOid: string | undefined,
  keyBits: Uint8Array,
  rawSpki: Uint8Array,
): Pick<ParsedCsr, 'publicKey' | 'spkiDer' | 'key'> {
  try {
    const curve = algOid === EC_PUBLIC_KEY && paramOid ? CURVES[paramOid] : undefined;
    if (curve && keyBits.byteLength === 1 + 2 * curve.size && keyBits[0] === 4) {
      const x = keyBits.subarray(1, 1 + curve.size);
      const y = keyBits.subarray(1 + curve.size);
      const publicKey = createPublicKey({
        key: { kty: 'EC', crv: curve.crv, x: b64url(x), y: b64url(y) },
        format: 'jwk',
      });
      return {
        publicKey,
        spkiDer: concat(spkiPrefix(algOid, paramOid, keyBits.byteLength), keyBits),
        key: { kind: curve.kind },
      };
    }
    if (algOid === OID.ed25519 && paramOid === undefined && keyBits.byteLength === 32) {
      const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(keyBits) }, format: 'jwk' });
      return { publicKey, spkiDer: concat(spkiPrefix(algOid, undefined, 32), keyBits), key: { kind: 'Ed25519' } };
    }
  } catch {
    // Not a valid point: let the general path below decide (and fail).
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(rawSpki), format: 'der', type: 'spki' });
  } catch {
    return {
      publicKey: undefined,
      spkiDer: rawSpki,
      key: { kind: undefined, why: `unsupported key algorithm ${algOid}` },
    };
  }
  const spkiDer = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  switch (publicKey.asymmetricKeyType) {
    case 'ec': {
      const c = publicKey.asymmetricKeyDetails?.namedCurve;
      if (c === 'prime256v1') return { publicKey, spkiDer, key: { kind: 'P-256' } };
      if (c === 'secp384r1') return { publicKey, spkiDer, key: { kind: 'P-384' } };
      return { publicKey, spkiDer, key: { kind: undefined, why: `ECDSA curve ${c ?? 'unknown'}` } };
    }
    case 'ed25519':
      return { publicKey, spkiDer, key: { kind: 'Ed25519' } };
    case 'rsa': {
      const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS) return { publicKey, spkiDer, key: { kind: 'RSA' } };
      return { publicKey, spkiDer, key: { kind: undefined, why: `RSA ${bits} bits` } };
    }
    default:
      return { publicKey, spkiDer, key: { kind: undefined, why: `${publicKey.asymmetricKeyType ?? 'unknown'} keys` } };
  }
}

const isSeq = (v: unknown): v is asn1js.Sequence => v instanceof asn1js.Sequence;
const isCtx = (v: unknown, n: number): v is asn1js.Constructed =>
  v instanceof asn1js.Constructed && v.idBlock.tagClass === 3 && v.idBlock.tagNumber === n;
const rawOf = (v: asn1js.AsnType): Uint8Array => new Uint8Array(v.valueBeforeDecodeView);

/** An AlgorithmIdentifier: OID and, when present, an OID parameter (EC curves). */
function algorithmOf(v: unknown): { oid: string; param: string | undefined; hasOtherParam: boolean } {
  if (!isSeq(v)) throw new Error('AlgorithmIdentifier');
  const [o, p, ...rest] = v.valueBlock.value;
  if (!(o instanceof asn1js.ObjectIdentifier) || rest.length > 0) throw new Error('AlgorithmIdentifier');
  return {
    oid: o.valueBlock.toString(),
    param: p instanceof asn1js.ObjectIdentifier ? p.valueBlock.toString() : undefined,
    hasOtherParam: p !== undefined && !(p instanceof asn1js.ObjectIdentifier) && !(p instanceof asn1js.Null),
  };
}

/**
 * The PKCS#10 structure (RFC 2986) read off the asn1js tree directly: pkijs' schema matching
 * costs more than the whole decode. Anything that does not fit the structure is malformed.
 */
function decodeCsr(der: Uint8Array): {
  tbs: Uint8Array;
  version: number;
  subject: asn1js.Sequence;
  spki: asn1js.Sequence;
  attributes: asn1js.Constructed | undefined;
  sigAlg: string;
  signature: Uint8Array;
} {
  const root = parseDer(der);
  if (!isSeq(root) || root.valueBlock.value.length !== 3) throw new Error('CertificationRequest');
  const [info, alg, sig] = root.valueBlock.value;
  if (!isSeq(info) || !(sig instanceof asn1js.BitString) || sig.valueBlock.unusedBits !== 0)
    throw new Error('CertificationRequest');
  const parts = info.valueBlock.value;
  if (parts.length < 3 || parts.length > 4) throw new Error('CertificationRequestInfo');
  const [version, subject, spki, attributes] = parts;
  if (!(version instanceof asn1js.Integer) || !isSeq(subject) || !isSeq(spki))
    throw new Error('CertificationRequestInfo');
  if (attributes !== undefined && !isCtx(attributes, 0)) throw new Error('attributes');
  return {
    tbs: rawOf(info),
    version: version.valueBlock.valueDec,
    subject,
    spki,
    attributes,
    sigAlg: algorithmOf(alg).oid,
    signature: new Uint8Array(sig.valueBlock.valueHexView),
  };
}

/** Size, PEM framing and DER structure; throws CA_ERR_CSR_{TOO_LARGE,NOT_PEM,MALFORMED}. */
/**
 * The extensions of the one PKCS#9 extensionRequest attribute, if any (RFC 2986 section 4.1:
 * Attribute ::= SEQUENCE { type OID, values SET OF ANY }; Extension ::= SEQUENCE { extnID OID,
 * critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }). Throws with the reason on a bad shape.
 */
function requestedExtensions(attributes: asn1js.Constructed | undefined): RequestedExtension[] {
  const out: RequestedExtension[] = [];
  let seen = false;
  for (const attr of attributes?.valueBlock.value ?? []) {
    const [type, values, ...rest] = isSeq(attr) ? attr.valueBlock.value : [];
    if (!(type instanceof asn1js.ObjectIdentifier) || !(values instanceof asn1js.Set) || rest.length > 0)
      throw new Error('the attributes do not decode');
    if (type.valueBlock.toString() !== OID.extensionRequest) continue;
    if (seen || values.valueBlock.value.length !== 1) throw new Error('more than one extensionRequest attribute');
    seen = true;
    const exts = values.valueBlock.value[0];
    if (!isSeq(exts)) throw new Error('the extensionRequest attribute does not decode');
    for (const ext of exts.valueBlock.value) {
      const parts = isSeq(ext) ? ext.valueBlock.value : [];
      const [id, second, third] = parts;
      const critical = second instanceof asn1js.Boolean ? second.valueBlock.value : false;
      const value = second instanceof asn1js.Boolean ? third : second;
      const expected = second instanceof asn1js.Boolean ? 3 : 2;
      if (
        !(id instanceof asn1js.ObjectIdentifier) ||
        !(value instanceof asn1js.OctetString) ||
        parts.length !== expected
      )
        throw new Error('the extensionRequest attribute does not decode');
      out.push({ extnID: id.valueBlock.toString(), critical, value: new Uint8Array(value.valueBlock.valueHexView) });
    }
  }
  return out;
}

/**
 * GeneralNames (RFC 5280 section 4.2.1.6) as [type, value]: a dNSName ([2] IA5String, implicit)
 * as its text, any other kind with an empty value (the caller refuses those by type).
 */
function generalNames(der: Uint8Array): [number, string][] {
  const seq = parseDer(der);
  if (!isSeq(seq)) throw new Error('GeneralNames');
  return seq.valueBlock.value.map((n) => {
    if (n.idBlock.tagClass !== 3) throw new Error('GeneralName');
    const t = n.idBlock.tagNumber;
    if (t !== 2) return [t, ''];
    if (n.idBlock.isConstructed) throw new Error('dNSName');
    return [t, Buffer.from((n as asn1js.Primitive).valueBlock.valueHexView).toString('latin1')];
  });
}

export function parseCsr(pem: string): ParsedCsr {
  if (typeof pem !== 'string') throw CaErrors.csrNotPem();
  const size = Buffer.byteLength(pem, 'utf8');
  if (size > MAX_CSR_BYTES) throw CaErrors.csrTooLarge(size, MAX_CSR_BYTES);
  const blocks = fromPemAll(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  if (blocks.length !== 1) {
    if (blocks.length > 1) throw CaErrors.csrMalformed('more than one request in the PEM');
    throw CaErrors.csrNotPem();
  }
  let d: ReturnType<typeof decodeCsr>;
  try {
    d = decodeCsr(blocks[0]!);
  } catch {
    throw CaErrors.csrMalformed('the DER does not decode as a PKCS#10 CertificationRequest');
  }
  if (d.version !== 0) throw CaErrors.csrMalformed(`version ${d.version} (only v1 exists)`);
  const [keyAlg, keyBitString, ...extra] = d.spki.valueBlock.value;
  let alg: ReturnType<typeof algorithmOf>;
  try {
    alg = algorithmOf(keyAlg);
    if (!(keyBitString instanceof asn1js.BitString) || keyBitString.valueBlock.unusedBits !== 0 || extra.length > 0)
      throw new Error('spki');
  } catch {
    throw CaErrors.csrMalformed('the public key does not decode');
  }
  const keyBits = new Uint8Array(keyBitString.valueBlock.valueHexView);
  const loaded =
    alg.hasOtherParam && alg.oid === EC_PUBLIC_KEY
      ? {
          publicKey: undefined,
          spkiDer: rawOf(d.spki),
          key: { kind: undefined, why: 'explicit EC curve parameters' } as const,
        }
      : loadKey(alg.oid, alg.param, keyBits, rawOf(d.spki));
  const commonNames: string[] = [];
  for (const rdn of d.subject.valueBlock.value) {
    if (!(rdn instanceof asn1js.Set)) throw CaErrors.csrMalformed('the subject is not a Name');
    for (const atv of rdn.valueBlock.value) {
      const [type, value] = isSeq(atv) ? atv.valueBlock.value : [];
      if (!(type instanceof asn1js.ObjectIdentifier) || value === undefined)
        throw CaErrors.csrMalformed('the subject is not a Name');
      if (type.valueBlock.toString() !== OID.commonName) continue;
      const v: unknown = (value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
      if (typeof v !== 'string') throw CaErrors.csrMalformed('the subject common name is not a string');
      commonNames.push(v);
    }
  }
  let requested: RequestedExtension[];
  try {
    requested = requestedExtensions(d.attributes);
  } catch (e) {
    throw CaErrors.csrMalformed(e instanceof Error ? e.message : 'the attributes do not decode');
  }
  return {
    tbs: d.tbs,
    signatureAlgorithm: d.sigAlg,
    signature: d.signature,
    keyAlgorithm: alg.oid,
    ...loaded,
    keyBits,
    spkiSha256: hex(sha256(loaded.spkiDer)),
    commonNames,
    requested,
  };
}

// ---------------------------------------------------------------- validators

/** Allowed keys: ECDSA P-256/P-384, Ed25519, RSA 2048-8192 bits (decided while loading the key). */
export const keyAllowed: CsrValidator = (c) => {
  if (c.key.kind === undefined) throw CaErrors.keyNotAllowed(c.key.why);
};

/** Proof of possession: the request is signed by the key it carries. */
export const signatureValid: CsrValidator = (c) => {
  const oid = c.signatureAlgorithm;
  if (!verifiableAlgorithm(oid)) throw CaErrors.csrSignatureAlg(oid);
  const ok = c.publicKey !== undefined && verifyBytes(oid, c.publicKey, c.tbs, c.signature);
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
    let names: [number, string][];
    try {
      names = generalNames(sans[0].value);
    } catch {
      throw CaErrors.csrMalformed('the subjectAltName request does not decode');
    }
    for (const [type, value] of names) {
      if (type !== 2) throw CaErrors.csrNames(`the SAN request holds a name of type ${generalNameType(type)}`, fqdn);
      if (normalizeName(value) !== fqdn) throw CaErrors.csrNames(`the SAN request holds '${value}'`, fqdn);
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
export const CSR_VALIDATORS: readonly CsrValidator[] = [
  keyAllowed,
  signatureValid,
  nameInZone,
  namesExact,
  noUnknownCritical,
];

/** Parses and checks a CSR against every validator; returns the parsed request. */
export function checkCsrPure(
  pem: string,
  ctx: CsrContext,
  validators: readonly CsrValidator[] = CSR_VALIDATORS,
): ParsedCsr {
  const parsed = parseCsr(pem);
  for (const v of validators) v(parsed, ctx);
  return parsed;
}

function generalNameType(t: number): string {
  return (
    [
      'otherName',
      'rfc822Name',
      'dNSName',
      'x400Address',
      'directoryName',
      'ediPartyName',
      'URI',
      'iPAddress',
      'registeredID',
    ][t] ?? String(t)
  );
}
