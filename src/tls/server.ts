import { x5cToPem } from '../client/index.js';
import { ownCertificate, type OwnCertificateIssuer } from './own-certificate.js';

export interface ServerTls {
  cert: string;
  key: string;
  notAfter: Date;
  renewed: boolean;
}

/**
 * The HTTPS server's certificate when no --tls-cert is given: issued by the ANS CA for the public
 * URL's host (a name in the zone, so the issuing CA's name constraints allow it), serverAuth.
 * The chain sent is the leaf and the issuing CA; clients trust the ANS root (`ans ca export`).
 */
export async function serverTls(o: {
  ca: OwnCertificateIssuer;
  dataDir: string;
  host: string;
  now: () => Date;
}): Promise<ServerTls> {
  const c = await ownCertificate({
    ca: o.ca,
    dataDir: o.dataDir,
    file: 'server-tls.json',
    subjectId: `server:${o.host}`,
    fqdn: o.host,
    uri: `ans://server.${o.host}`,
    now: o.now,
    cannotIssue: () =>
      new Error(
        `no TLS certificate for ${o.host}: the CA cannot issue (no CA passphrase) — set ANS_CA_PASSPHRASE or pass --tls-cert/--tls-key`,
      ),
  });
  return { cert: x5cToPem(c.x5c.slice(0, -1)), key: c.keyPem, notAfter: c.notAfter, renewed: c.renewed };
}
