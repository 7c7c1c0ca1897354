/**
 * CRL building (RFC 5280 section 5): a v2 CRL signed by one issuing CA, with the
 * authorityKeyIdentifier and an increasing cRLNumber, one entry per revoked, unexpired
 * certificate of that issuer, and a reasonCode entry extension unless the reason is
 * `unspecified` (5.3.1: SHOULD be absent then).
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { RevokedEntry } from './repo.js';
import { REASON_CODE } from './types.js';
import { OID, ext, serialToInteger, signTbs, x509Time, type SigningKey } from './x509.js';

export interface CrlIssuer {
  name: pkijs.RelativeDistinguishedNames;
  ski: Uint8Array;
  signer: SigningKey;
}

export interface CrlParams {
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: readonly RevokedEntry[];
}

// The reasonCode extensions are identical for every entry with the same reason: build once.
const reasonExtensions = new Map<number, pkijs.Extensions>();
function reasonExt(code: number): pkijs.Extensions {
  let e = reasonExtensions.get(code);
  if (!e) {
    e = new pkijs.Extensions({ extensions: [ext(OID.crlReason, false, new asn1js.Enumerated({ value: code }))] });
    reasonExtensions.set(code, e);
  }
  return e;
}

export function buildCrl(issuer: CrlIssuer, p: CrlParams): Uint8Array {
  const revoked = p.entries.map((e) => {
    const code = REASON_CODE[e.reason];
    return new pkijs.RevokedCertificate({
      userCertificate: serialToInteger(e.serial),
      revocationDate: x509Time(e.revokedAt),
      ...(code === 0 ? {} : { crlEntryExtensions: reasonExt(code) }),
    });
  });
  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    issuer: issuer.name,
    thisUpdate: x509Time(p.thisUpdate),
    nextUpdate: x509Time(p.nextUpdate),
    ...(revoked.length > 0 ? { revokedCertificates: revoked } : {}),
    crlExtensions: new pkijs.Extensions({
      extensions: [
        ext(
          OID.authorityKeyIdentifier,
          false,
          new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: issuer.ski.slice().buffer }) }),
        ),
        ext(OID.crlNumber, false, new asn1js.Integer({ value: p.crlNumber })),
      ],
    }),
  });
  return signTbs(crl, issuer.signer);
}
