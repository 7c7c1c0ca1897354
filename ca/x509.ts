/**
 * Small shared X.509 helpers on top of pkijs/asn1js: PEM framing, serials, times, extension
 * builders and signing of pkijs objects with node:crypto keys (synchronous and several times
 * faster than going through WebCrypto). No DER is written by hand here: every structure is
 * built from pkijs/asn1js objects.
 */
import {
  createHash,
  createPublicKey,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  webcrypto,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

pkijs.setEngine(
  'node',
  new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
);

export const OID = {
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspAccess: '1.3.6.1.5.5.7.48.1',
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha384: '1.2.840.113549.1.1.12',
  rsaSha512: '1.2.840.113549.1.1.13',
  ed25519: '1.3.101.112',
} as const;

// ---------------------------------------------------------------- PEM / DER

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every PEM block with one of `labels`, decoded; strict base64 (no stray characters). */
export function fromPemAll(text: string, labels: readonly string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (!labels.includes(m[1]!)) continue;
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) continue;
    out.push(new Uint8Array(Buffer.from(body, 'base64')));
  }
  return out;
}

/** Decodes DER into an asn1js object; throws unless the bytes are exactly one valid element. */
export function parseDer(der: Uint8Array): asn1js.AsnType {
  // An ArrayBuffer of its own (the copy) skips asn1js' per-call view conversions: ~20% faster.
  const r = asn1js.fromBER(der.slice().buffer);
  if (r.offset === -1 || r.result.error) throw new Error(r.result.error || 'not DER');
  if (r.offset !== der.byteLength) throw new Error('trailing bytes after the DER element');
  return r.result;
}

export function certFromDer(der: Uint8Array): pkijs.Certificate {
  return new pkijs.Certificate({ schema: parseDer(der) });
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
}

export function sha1(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(data).digest());
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

// ---------------------------------------------------------------- serials

/**
 * A fresh 128-bit random serial as lower-case hex (32 digits, never a leading zero byte, so the
 * hex form is canonical).
 */
export function randomSerial(): string {
  for (;;) {
    const b = randomBytes(16);
    if (b[0] !== 0) return b.toString('hex');
  }
}

/** The asn1js INTEGER for a hex serial (a 0x00 is prepended when the top bit is set). */
export function serialToInteger(serialHex: string): asn1js.Integer {
  let bytes = Buffer.from(serialHex, 'hex');
  // DER INTEGERs are minimal: drop leading zero bytes, then add one back if the top bit is set.
  let s = 0;
  while (s < bytes.length - 1 && bytes[s] === 0) s++;
  bytes = bytes.subarray(s);
  const v = bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return new asn1js.Integer({ valueHex: new Uint8Array(v).buffer });
}

/** Canonical hex of an INTEGER's bytes (leading zero bytes dropped). */
export function integerToSerial(i: asn1js.Integer): string {
  const v = i.valueBlock.valueHexView;
  let s = 0;
  while (s < v.length - 1 && v[s] === 0) s++;
  return Buffer.from(v.subarray(s)).toString('hex');
}

export const SERIAL_RE = /^[0-9a-f]{1,40}$/;

// ---------------------------------------------------------------- times

/** X.509 time: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
export function x509Time(d: Date): pkijs.Time {
  return new pkijs.Time({
    type: d.getUTCFullYear() < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime,
    value: d,
  });
}

/** Certificates carry whole seconds. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

// ---------------------------------------------------------------- names and extensions

/** A name with one RDN, CN=cn (pkijs puts all typesAndValues of one object into one RDN). */
export function cnName(cn: string): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({
    typesAndValues: [
      new pkijs.AttributeTypeAndValue({ type: OID.commonName, value: new asn1js.Utf8String({ value: cn }) }),
    ],
  });
}

export function ext(
  extnID: string,
  critical: boolean,
  value: { toSchema(): asn1js.AsnType } | asn1js.AsnType,
): pkijs.Extension {
  const schema = 'toSchema' in value ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

/** keyUsage bits, named as in RFC 5280 4.2.1.3. */
export type KeyUsageBit = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';
const KU_BIT: Record<KeyUsageBit, number> = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

export function keyUsage(bits: readonly KeyUsageBit[]): asn1js.BitString {
  let v = 0;
  let highest = 0;
  for (const b of bits) {
    v |= 0x80 >> KU_BIT[b];
    highest = Math.max(highest, KU_BIT[b]);
  }
  // DER: named bit lists drop trailing zero bits.
  return new asn1js.BitString({ valueHex: new Uint8Array([v]).buffer, unusedBits: 7 - highest });
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(spki: pkijs.PublicKeyInfo): Uint8Array {
  return sha1(spki.subjectPublicKey.valueBlock.valueHexView);
}

export function spkiDer(spki: pkijs.PublicKeyInfo): Uint8Array {
  return new Uint8Array(spki.toSchema().toBER(false));
}

// ---------------------------------------------------------------- signing and verifying

export interface SigningKey {
  key: KeyObject;
  /** Hash for node:crypto sign, null for Ed25519. */
  hash: 'sha256' | 'sha384' | null;
  algorithm: pkijs.AlgorithmIdentifier;
}

/** The signature algorithm matching a CA key (ECDSA P-256 -> SHA-256, P-384 -> SHA-384). */
export function signingKey(key: KeyObject): SigningKey {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1')
      return { key, hash: 'sha256', algorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecdsaSha256 }) };
    if (curve === 'secp384r1')
      return { key, hash: 'sha384', algorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecdsaSha384 }) };
  }
  throw new Error(`unsupported CA key ${key.asymmetricKeyType ?? '?'}`);
}

export function signBytes(k: SigningKey, data: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(k.hash, data, { key: k.key, dsaEncoding: 'der' }));
}

/** Signs a pkijs Certificate or CRL in place (what pkijs' own `sign` does, with node:crypto). */
export function signTbs(obj: pkijs.Certificate | pkijs.CertificateRevocationList, k: SigningKey): Uint8Array {
  obj.signature = k.algorithm;
  obj.signatureAlgorithm = k.algorithm;
  // CRL.encodeTBS is declared protected in the typings; it is the same public method at runtime.
  const tbs = (obj as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS();
  const tbsDer = new Uint8Array(tbs.toBER(false));
  obj.tbsView = tbsDer;
  obj.signatureValue = new asn1js.BitString({ valueHex: signBytes(k, tbsDer).slice().buffer });
  return new Uint8Array(new asn1js.Sequence({ value: [tbs, k.algorithm.toSchema(), obj.signatureValue] }).toBER(false));
}

const VERIFY_ALGS: Record<string, string | null> = {
  [OID.ecdsaSha256]: 'sha256',
  [OID.ecdsaSha384]: 'sha384',
  [OID.ecdsaSha512]: 'sha512',
  [OID.rsaSha256]: 'sha256',
  [OID.rsaSha384]: 'sha384',
  [OID.rsaSha512]: 'sha512',
  [OID.ed25519]: null,
};

/** Whether node:crypto can check this signature algorithm (see VERIFY_ALGS). */
export function verifiableAlgorithm(oid: string): boolean {
  return oid in VERIFY_ALGS;
}

/** Verifies `signature` over `data` with `publicKey` under the X.509 algorithm `oid`. */
export function verifyBytes(oid: string, publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (!(oid in VERIFY_ALGS)) return false;
  const hash = VERIFY_ALGS[oid]!;
  const kt = publicKey.asymmetricKeyType;
  // The algorithm must fit the key type: no ECDSA signature checked with an RSA key, etc.
  if (oid === OID.ed25519 ? kt !== 'ed25519' : oid.startsWith('1.2.840.10045') ? kt !== 'ec' : kt !== 'rsa')
    return false;
  try {
    return nodeVerify(hash, data, kt === 'ec' ? { key: publicKey, dsaEncoding: 'der' } : publicKey, signature);
  } catch {
    return false;
  }
}

export function publicKeyOf(spki: pkijs.PublicKeyInfo): KeyObject {
  return createPublicKey({ key: Buffer.from(spkiDer(spki)), format: 'der', type: 'spki' });
}
