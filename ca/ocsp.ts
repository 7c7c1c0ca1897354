/**
 * OCSP (RFC 6960): request parsing, issuer matching and basic responses signed directly by the
 * issuing CA that issued the certificate (no delegated responder). Nothing here throws on bad
 * input: a request that does not decode gets `malformedRequest`, one for an issuer that is not
 * ours gets `unauthorized`.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { RevocationReason } from './types.js';
import { REASON_CODE } from './types.js';
import { TAG, enc, tlv } from './der.js';
import { OID, integerToSerial, parseDer, signBytes, wholeSeconds, type SigningKey } from './x509.js';

export const OCSP_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = keyof typeof OCSP_STATUS;

/** At most this many certificates in one request. */
export const MAX_OCSP_REQUESTS = 20;
/** RFC 8954: a nonce is 1 to 32 octets; we tolerate up to 128. */
const MAX_NONCE_BYTES = 128;

const errorCache = new Map<number, Uint8Array>();
/** A response with no body, only the status (malformedRequest, unauthorized, ...). */
export function ocspError(status: Exclude<OcspResponseStatus, 'successful'>): Uint8Array {
  const code = OCSP_STATUS[status];
  let der = errorCache.get(code);
  if (!der) {
    der = new Uint8Array(
      new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: code }) }).toSchema().toBER(false),
    );
    errorCache.set(code, der);
  }
  return der;
}

/** The hashes a CertID may carry for one issuing CA (SHA-1 is what clients send by default). */
export interface OcspIssuer {
  id: string;
  nameHash: Record<string, Uint8Array>; // by hash OID
  keyHash: Record<string, Uint8Array>; // by hash OID
  /** SHA-1 of the issuer's subjectPublicKey bits: ResponderID byKey. */
  responderKeyHash: Uint8Array;
  signer: SigningKey | undefined;
}

export interface OcspItem {
  /** The request's CertID, DER (echoed in the SingleResponse). */
  certIdDer: Uint8Array;
  serial: string;
}

export type ParsedOcsp =
  | { ok: false; status: 'malformedRequest' | 'unauthorized' }
  | { ok: true; issuer: OcspIssuer; items: OcspItem[]; nonce: Uint8Array | undefined };

function equal(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

const isSeq = (v: unknown): v is asn1js.Sequence => v instanceof asn1js.Sequence;
const isCtx = (v: unknown, n: number): v is asn1js.Constructed =>
  v instanceof asn1js.Constructed && v.idBlock.tagClass === 3 && v.idBlock.tagNumber === n;

class Malformed extends Error {}
function need(cond: unknown): asserts cond {
  if (!cond) throw new Malformed('malformed');
}

/**
 * The RFC 6960 4.1.1 structure read off the asn1js tree directly (pkijs' schema matching
 * costs more than everything else in a cached answer):
 *   OCSPRequest ::= SEQUENCE { tbsRequest, optionalSignature [0] EXPLICIT OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] OPTIONAL, requestorName [1] OPTIONAL,
 *                              requestList SEQUENCE OF Request, requestExtensions [2] OPTIONAL }
 *   Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] OPTIONAL }
 *   CertID      ::= SEQUENCE { hashAlgorithm, issuerNameHash OCTET STRING,
 *                              issuerKeyHash OCTET STRING, serialNumber INTEGER }
 */
export function parseOcspRequest(der: Uint8Array, issuers: readonly OcspIssuer[]): ParsedOcsp {
  let issuer: OcspIssuer | undefined;
  const items: OcspItem[] = [];
  let nonce: Uint8Array | undefined;
  try {
    const root = parseDer(der);
    need(isSeq(root) && root.valueBlock.value.length >= 1 && root.valueBlock.value.length <= 2);
    const [tbs, sig] = root.valueBlock.value;
    need(isSeq(tbs) && (sig === undefined || isCtx(sig, 0)));
    const parts = [...tbs.valueBlock.value];
    if (isCtx(parts[0], 0)) {
      const v = parts.shift() as asn1js.Constructed;
      need(v.valueBlock.value.length === 1 && v.valueBlock.value[0] instanceof asn1js.Integer);
    }
    if (isCtx(parts[0], 1)) parts.shift();
    const list = parts.shift();
    need(isSeq(list));
    const extsWrap = parts.shift();
    need(parts.length === 0 && (extsWrap === undefined || isCtx(extsWrap, 2)));
    const reqs = list.valueBlock.value;
    if (reqs.length === 0 || reqs.length > MAX_OCSP_REQUESTS) return { ok: false, status: 'malformedRequest' };
    const found: {
      alg: string;
      nameHash: Uint8Array;
      keyHash: Uint8Array;
      certId: asn1js.Sequence;
      serial: asn1js.Integer;
    }[] = [];
    for (const r of reqs) {
      need(isSeq(r) && r.valueBlock.value.length >= 1 && r.valueBlock.value.length <= 2);
      const [certId, single] = r.valueBlock.value;
      need(isSeq(certId) && (single === undefined || isCtx(single, 0)));
      const [alg, nameHash, keyHash, serial, ...rest] = certId.valueBlock.value;
      need(isSeq(alg) && alg.valueBlock.value[0] instanceof asn1js.ObjectIdentifier && rest.length === 0);
      need(
        nameHash instanceof asn1js.OctetString &&
          keyHash instanceof asn1js.OctetString &&
          serial instanceof asn1js.Integer,
      );
      found.push({
        alg: (alg.valueBlock.value[0] as asn1js.ObjectIdentifier).valueBlock.toString(),
        nameHash: nameHash.valueBlock.valueHexView,
        keyHash: keyHash.valueBlock.valueHexView,
        certId,
        serial,
      });
    }
    if (extsWrap) {
      const exts = (extsWrap as asn1js.Constructed).valueBlock.value[0];
      need(isSeq(exts));
      for (const e of exts.valueBlock.value) {
        need(isSeq(e));
        const [oid, ...rest] = e.valueBlock.value;
        need(oid instanceof asn1js.ObjectIdentifier);
        const value = rest[rest.length - 1];
        need(value instanceof asn1js.OctetString && rest.length <= 2);
        if (oid.valueBlock.toString() !== OID.ocspNonce) continue;
        if (value.valueBlock.valueHexView.byteLength > MAX_NONCE_BYTES + 4)
          return { ok: false, status: 'malformedRequest' };
        nonce = enc(e);
      }
    }
    for (const f of found) {
      const match = issuers.find((i) => equal(i.nameHash[f.alg], f.nameHash) && equal(i.keyHash[f.alg], f.keyHash));
      // One response has one signer: every certificate asked about must share our issuer.
      if (!match || (issuer && match !== issuer)) return { ok: false, status: 'unauthorized' };
      issuer = match;
      const serialBytes = f.serial.valueBlock.valueHexView;
      if (serialBytes.length === 0 || serialBytes.length > 21) return { ok: false, status: 'malformedRequest' };
      items.push({ certIdDer: enc(f.certId), serial: integerToSerial(f.serial) });
    }
  } catch {
    return { ok: false, status: 'malformedRequest' };
  }
  return { ok: true, issuer: issuer!, items, nonce };
}

export type CertState =
  { state: 'good' } | { state: 'revoked'; revokedAt: Date; reason: RevocationReason } | { state: 'unknown' };

const GOOD_DER = enc(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } }));
const UNKNOWN_DER = enc(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } }));

function certStatus(s: CertState): Uint8Array {
  switch (s.state) {
    case 'good':
      return GOOD_DER;
    case 'unknown':
      return UNKNOWN_DER;
    case 'revoked': {
      const code = REASON_CODE[s.reason];
      const value: asn1js.AsnType[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(s.revokedAt) })];
      if (code !== 0) {
        value.push(
          new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber: 0 },
            value: [new asn1js.Enumerated({ value: code })],
          }),
        );
      }
      return enc(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value }));
    }
  }
}

export interface OcspAnswer {
  item: OcspItem;
  status: CertState;
}

/** Per-issuer constant parts of a response, DER-encoded once. */
const issuerParts = new WeakMap<OcspIssuer, { responderId: Uint8Array; sigAlg: Uint8Array }>();
const SUCCESSFUL_DER = enc(new asn1js.Enumerated({ value: OCSP_STATUS.successful }));
const BASIC_OID_DER = enc(new asn1js.ObjectIdentifier({ value: OID.ocspBasic }));

/** GeneralizedTime DER for a whole second (one second's answers share it). */
let lastTime: { ms: number; der: Uint8Array } = { ms: -1, der: new Uint8Array() };
/** [0] EXPLICIT nextUpdate, likewise. */
let lastNext: { ms: number; der: Uint8Array } = { ms: -1, der: new Uint8Array() };
function genTime(d: Date): Uint8Array {
  if (lastTime.ms !== d.getTime())
    lastTime = { ms: d.getTime(), der: enc(new asn1js.GeneralizedTime({ valueDate: d })) };
  return lastTime.der;
}

/**
 * A signed `successful` response with one SingleResponse per item: the same structure and
 * bytes pkijs' ResponseData/SingleResponse/BasicOCSPResponse/OCSPResponse produce
 * (test/ca/fastpath.test.ts compares them), assembled from pre-encoded parts and signed with
 * node:crypto.
 */
export function buildOcspResponse(
  issuer: OcspIssuer & { signer: SigningKey },
  answers: readonly OcspAnswer[],
  now: Date,
  validityMs: number,
  nonce: Uint8Array | undefined,
): Uint8Array {
  let parts = issuerParts.get(issuer);
  if (!parts) {
    parts = {
      // ResponderID byKey: [2] EXPLICIT KeyHash (OCTET STRING)
      responderId: enc(
        new asn1js.Constructed({
          idBlock: { tagClass: 3, tagNumber: 2 },
          value: [new asn1js.OctetString({ valueHex: issuer.responderKeyHash.slice().buffer })],
        }),
      ),
      sigAlg: enc(issuer.signer.algorithm),
    };
    issuerParts.set(issuer, parts);
  }
  const thisUpdate = genTime(wholeSeconds(now));
  const next = wholeSeconds(new Date(now.getTime() + validityMs));
  if (lastNext.ms !== next.getTime())
    lastNext = { ms: next.getTime(), der: tlv(TAG.ctx(0), [enc(new asn1js.GeneralizedTime({ valueDate: next }))]) };
  const nextUpdate = lastNext.der;
  const responses = answers.map((a) =>
    tlv(TAG.SEQUENCE, [a.item.certIdDer, certStatus(a.status), thisUpdate, nextUpdate]),
  );
  const tbsParts = [parts.responderId, thisUpdate, tlv(TAG.SEQUENCE, responses)];
  if (nonce) tbsParts.push(tlv(TAG.ctx(1), [tlv(TAG.SEQUENCE, [nonce])]));
  const tbs = tlv(TAG.SEQUENCE, tbsParts);
  // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature } (no certs:
  // the issuing CA signs itself).
  const basic = tlv(TAG.SEQUENCE, [
    tbs,
    parts.sigAlg,
    enc(new asn1js.BitString({ valueHex: signBytes(issuer.signer, tbs).slice().buffer })),
  ]);
  // OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT ResponseBytes }
  // ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING }
  return tlv(TAG.SEQUENCE, [
    SUCCESSFUL_DER,
    tlv(TAG.ctx(0), [tlv(TAG.SEQUENCE, [BASIC_OID_DER, tlv(TAG.OCTET_STRING, [basic])])]),
  ]);
}
