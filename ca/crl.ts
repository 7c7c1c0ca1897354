/**
 * CRL building (RFC 5280 section 5): a v2 CRL signed by one issuing CA, with the
 * authorityKeyIdentifier and an increasing cRLNumber, one entry per revoked, unexpired
 * certificate of that issuer, and a reasonCode entry extension unless the reason is
 * `unspecified` (5.3.1: SHOULD be absent then).
 *
 * Speed: each revoked entry is DER-encoded once (asn1js, `encodeEntry`) and kept in the
 * store (`certificates.crl_entry`); a CRL is the pre-encoded entries concatenated under a
 * SEQUENCE header plus a small TBS head and tail, signed with node:crypto. The bytes are the
 * ones pkijs' CertificateRevocationList builder produces (test/ca/fastpath.test.ts compares).
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { TAG, enc, tlv } from './der.js';
import type { RevokedEntry } from './repo.js';
import { REASON_CODE } from './types.js';
import { OID, ext, serialToInteger, signBytes, x509Time, type SigningKey } from './x509.js';

export interface CrlIssuer {
  name: pkijs.RelativeDistinguishedNames;
  ski: Uint8Array;
  signer: SigningKey;
}

export interface CrlParams {
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
}

// The reasonCode extensions are identical for every entry with the same reason: encode once.
const reasonDer = new Map<number, Uint8Array>();
function reasonExt(code: number): Uint8Array {
  let e = reasonDer.get(code);
  if (!e) {
    e = enc(new pkijs.Extensions({ extensions: [ext(OID.crlReason, false, new asn1js.Enumerated({ value: code }))] }));
    reasonDer.set(code, e);
  }
  return e;
}

// Revocation times repeat (whole seconds, bulk revocations): keep a few encodings around.
const timeDer = new Map<number, Uint8Array>();
function timeOf(d: Date): Uint8Array {
  let t = timeDer.get(d.getTime());
  if (!t) {
    if (timeDer.size > 4096) timeDer.clear();
    t = enc(x509Time(d));
    timeDer.set(d.getTime(), t);
  }
  return t;
}

/** One revokedCertificates entry: SEQUENCE { userCertificate, revocationDate, crlEntryExtensions? }. */
export function encodeEntry(e: RevokedEntry): Uint8Array {
  const code = REASON_CODE[e.reason];
  const parts = [enc(serialToInteger(e.serial)), timeOf(e.revokedAt)];
  if (code !== 0) parts.push(reasonExt(code));
  return tlv(TAG.SEQUENCE, parts);
}

const V2_DER = enc(new asn1js.Integer({ value: 1 }));

/**
 * The signed DER CRL around `entries`, the concatenation of `count` entries from encodeEntry
 * (in the order they should appear).
 */
export function assembleCrl(issuer: CrlIssuer, p: CrlParams, entries: Uint8Array, count: number): Uint8Array {
  const sigAlg = enc(issuer.signer.algorithm);
  const exts = tlv(TAG.ctx(0), [
    enc(
      new pkijs.Extensions({
        extensions: [
          ext(
            OID.authorityKeyIdentifier,
            false,
            new pkijs.AuthorityKeyIdentifier({
              keyIdentifier: new asn1js.OctetString({ valueHex: issuer.ski.slice().buffer }),
            }),
          ),
          ext(OID.crlNumber, false, new asn1js.Integer({ value: p.crlNumber })),
        ],
      }),
    ),
  ]);
  const tbsParts = [V2_DER, sigAlg, enc(issuer.name), enc(x509Time(p.thisUpdate)), enc(x509Time(p.nextUpdate))];
  if (count > 0) tbsParts.push(tlv(TAG.SEQUENCE, [entries]));
  tbsParts.push(exts);
  const tbs = tlv(TAG.SEQUENCE, tbsParts);
  const sig = enc(new asn1js.BitString({ valueHex: signBytes(issuer.signer, tbs).slice().buffer }));
  return tlv(TAG.SEQUENCE, [tbs, sigAlg, sig]);
}

/** A CRL from entry rows (encodes each; for callers without pre-encoded entries). */
export function buildCrl(issuer: CrlIssuer, p: CrlParams & { entries: readonly RevokedEntry[] }): Uint8Array {
  const parts = p.entries.map(encodeEntry);
  return assembleCrl(issuer, p, concatAll(parts), parts.length);
}

function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const x of parts) n += x.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.byteLength;
  }
  return out;
}
