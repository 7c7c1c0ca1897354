/**
 * The CA's public surface; other folders import only this file. See ca/README.md.
 */
export { CertificateAuthority, type CaStats, type IssueRequest } from './authority.js';
export { ResponseSigner, type ResponseSignerOptions } from './signer.js';
export { caRoutes, OCSP_BODY_LIMIT, type CaRouteOptions } from './routes.js';
export { CaErrors } from './errors.js';
export {
  REVOCATION_REASONS,
  isRevocationReason,
  type CaOptions,
  type CertificateStatus,
  type IssuedCertificate,
  type RevocationReason,
  type VerifiedClient,
} from './types.js';
