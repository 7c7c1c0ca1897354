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
    der = new Uint8Array(new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: code }) }).toSchema().toBER(false));
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
  certID: pkijs.CertID;
  serial: string;
}

export type ParsedOcsp =
  | { ok: false; status: 'malformedRequest' | 'unauthorized' }
  | { ok: true; issuer: OcspIssuer; items: OcspItem[]; nonce: pkijs.Extension | undefined };

function equal(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

export function parseOcspRequest(der: Uint8Array, issuers: readonly OcspIssuer[]): ParsedOcsp {
  let req: pkijs.OCSPRequest;
  try {
    req = new pkijs.OCSPRequest({ schema: parseDer(der) });
  } catch {
    return { ok: false, status: 'malformedRequest' };
  }
  const list = req.tbsRequest.requestList;
  if (list.length === 0 || list.length > MAX_OCSP_REQUESTS) return { ok: false, status: 'malformedRequest' };
  let issuer: OcspIssuer | undefined;
  const items: OcspItem[] = [];
  for (const r of list) {
    const id = r.reqCert;
    const alg = id.hashAlgorithm.algorithmId;
    const nameHash = id.issuerNameHash.valueBlock.valueHexView;
    const keyHash = id.issuerKeyHash.valueBlock.valueHexView;
    const match = issuers.find((i) => equal(i.nameHash[alg], nameHash) && equal(i.keyHash[alg], keyHash));
    // One response has one signer: every certificate asked about must share our issuer.
    if (!match || (issuer && match !== issuer)) return { ok: false, status: 'unauthorized' };
    issuer = match;
    const serialBytes = id.serialNumber.valueBlock.valueHexView;
    if (serialBytes.length === 0 || serialBytes.length > 21) return { ok: false, status: 'malformedRequest' };
    items.push({ certID: id, serial: integerToSerial(id.serialNumber) });
  }
  const nonce = req.tbsRequest.requestExtensions?.find((e) => e.extnID === OID.ocspNonce);
  if (nonce && nonce.extnValue.valueBlock.valueHexView.byteLength > MAX_NONCE_BYTES + 4) {
    return { ok: false, status: 'malformedRequest' };
  }
  return { ok: true, issuer: issuer!, items, nonce };
}

export type CertState =
  | { state: 'good' }
  | { state: 'revoked'; revokedAt: Date; reason: RevocationReason }
  | { state: 'unknown' };

function certStatus(s: CertState): asn1js.AsnType {
  switch (s.state) {
    case 'good':
      return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
    case 'unknown':
      return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
    case 'revoked': {
      const code = REASON_CODE[s.reason];
      const value: asn1js.AsnType[] = [new asn1js.GeneralizedTime({ valueDate: wholeSeconds(s.revokedAt) })];
      if (code !== 0) {
        value.push(new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Enumerated({ value: code })] }));
      }
      return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value });
    }
  }
}

export interface OcspAnswer {
  item: OcspItem;
  status: CertState;
}

/** A signed `successful` response with one SingleResponse per item. */
export function buildOcspResponse(
  issuer: OcspIssuer & { signer: SigningKey },
  answers: readonly OcspAnswer[],
  now: Date,
  validityMs: number,
  nonce: pkijs.Extension | undefined,
): Uint8Array {
  const thisUpdate = wholeSeconds(now);
  const nextUpdate = wholeSeconds(new Date(now.getTime() + validityMs));
  const data = new pkijs.ResponseData({
    responderID: new asn1js.OctetString({ valueHex: issuer.responderKeyHash.slice().buffer }),
    producedAt: thisUpdate,
    responses: answers.map(
      (a) => new pkijs.SingleResponse({ certID: a.item.certID, certStatus: certStatus(a.status), thisUpdate, nextUpdate }),
    ),
    ...(nonce ? { responseExtensions: [nonce] } : {}),
  });
  const tbsSchema = data.toSchema(true);
  const tbs = new Uint8Array(tbsSchema.toBER(false));
  // BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature } (no certs:
  // the issuing CA signs itself). Assembled from the already-built schema instead of letting
  // pkijs re-parse the TBS bytes.
  const basic = new asn1js.Sequence({
    value: [
      tbsSchema,
      issuer.signer.algorithm.toSchema(),
      new asn1js.BitString({ valueHex: signBytes(issuer.signer, tbs).slice().buffer }),
    ],
  });
  const resp = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: OCSP_STATUS.successful }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: OID.ocspBasic,
      response: new asn1js.OctetString({ valueHex: basic.toBER(false) }),
    }),
  });
  return new Uint8Array(resp.toSchema().toBER(false));
}
