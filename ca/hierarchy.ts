/**
 * The CA hierarchy: a self-signed root (ECDSA P-384) and issuing intermediates (ECDSA P-256)
 * that carry a name constraint (permitted dNSName = the zone, permitted URI hosts = below the
 * zone) so that no certificate outside the zone can validate under this chain, whatever bug
 * happens upstream.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import {
  OID,
  certFromDer,
  cnName,
  ext,
  keyIdentifier,
  keyUsage,
  randomSerial,
  serialToInteger,
  signTbs,
  signingKey,
  wholeSeconds,
  x509Time,
} from './x509.js';

const DAY = 86_400_000;
export const ROOT_DAYS = 20 * 365;
export const ISSUING_DAYS = 5 * 365;

export function publicKeyInfo(key: KeyObject): pkijs.PublicKeyInfo {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
  return new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(der.slice()).result });
}

export function rootCertificate(key: KeyObject, zone: string, now: Date): Uint8Array {
  const spki = publicKeyInfo(key);
  const name = cnName(`ANS Root CA (${zone})`);
  const ski = keyIdentifier(spki);
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: serialToInteger(randomSerial()),
    issuer: name,
    subject: name,
    notBefore: x509Time(wholeSeconds(new Date(now.getTime() - 3600_000))),
    notAfter: x509Time(wholeSeconds(new Date(now.getTime() + ROOT_DAYS * DAY))),
    subjectPublicKeyInfo: spki,
    extensions: [
      ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: true })),
      ext(OID.keyUsage, true, keyUsage(['keyCertSign', 'cRLSign'])),
      ext(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: ski.slice().buffer })),
    ],
  });
  return signTbs(cert, signingKey(key));
}

export interface IssuingParams {
  key: KeyObject; // the new intermediate's private key
  generation: number;
  zone: string; // without the trailing dot
  rootDer: Uint8Array;
  rootKey: KeyObject;
  now: Date;
}

export function issuingCertificate(p: IssuingParams): Uint8Array {
  const root = certFromDer(p.rootDer);
  const spki = publicKeyInfo(p.key);
  const rootNotAfter = root.notAfter.value;
  const notAfter = new Date(Math.min(p.now.getTime() + ISSUING_DAYS * DAY, rootNotAfter.getTime()));
  const permitted = [
    new pkijs.GeneralSubtree({ base: new pkijs.GeneralName({ type: 2, value: p.zone }) }),
    // RFC 5280 4.2.1.10: a URI constraint starting with '.' covers hosts below the domain.
    new pkijs.GeneralSubtree({ base: new pkijs.GeneralName({ type: 6, value: `.${p.zone}` }) }),
  ];
  const cert = new pkijs.Certificate({
    version: 2,
    serialNumber: serialToInteger(randomSerial()),
    issuer: root.subject,
    subject: cnName(`ANS Issuing CA ${p.generation} (${p.zone})`),
    notBefore: x509Time(wholeSeconds(new Date(p.now.getTime() - 3600_000))),
    notAfter: x509Time(wholeSeconds(notAfter)),
    subjectPublicKeyInfo: spki,
    extensions: [
      ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      ext(OID.keyUsage, true, keyUsage(['digitalSignature', 'keyCertSign', 'cRLSign'])),
      ext(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyIdentifier(spki).slice().buffer })),
      ext(
        OID.authorityKeyIdentifier,
        false,
        new pkijs.AuthorityKeyIdentifier({
          keyIdentifier: new asn1js.OctetString({ valueHex: keyIdentifier(root.subjectPublicKeyInfo).slice().buffer }),
        }),
      ),
      ext(OID.nameConstraints, true, new pkijs.NameConstraints({ permittedSubtrees: permitted })),
    ],
  });
  return signTbs(cert, signingKey(p.rootKey));
}
