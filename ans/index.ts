export { AgentCard, Skill, Endpoint, Protocol, LABEL_PATTERN } from './card.js';
export {
  Registry,
  normaliseName,
  type AgentView,
  type CertificateIssuer,
  type CertificateInfo,
  type IssuedCertificate,
  type RevocationReason,
  type TextScreen,
  type Page,
} from './service.js';
export type { AgentRow } from './repo.js';
export { getAgent } from './repo.js';
export { STATUSES, livenessOf, type AgentStatus, type Liveness } from './lifecycle.js';
export { actorName, type Principal } from './principal.js';
export { AuditLog, type AuditRecord, type AuditVerdict } from './audit.js';
export { AnsErrors } from './errors.js';
export { compareSemver, incompatibilities } from './version.js';
export { registryRoutes, type RequestAuth, type RegistryRouteOptions } from './routes.js';
export { ActiveDirectory } from './directory.js';
export {
  Resolver,
  resolveRoutes,
  type SemanticSearch,
  type AnswerSigner,
  type ResolveAnswer,
  type ResolveResult,
} from './resolve.js';
