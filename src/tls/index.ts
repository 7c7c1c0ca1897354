/** src/tls: certificates this ANS issues to itself from its own CA (HTTPS server, federation gateway). */
export { ownCertificate, type OwnCertificate, type OwnCertificateIssuer } from './own-certificate.js';
export { serverTls, type ServerTls } from './server.js';
