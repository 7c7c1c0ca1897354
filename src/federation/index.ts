/** Federation (AMSP): see docs/amsp.md and src/federation/README.md. */
export { Federation, type FederationConfig, type FederationDeps } from './speaker.js';
export { amspRoutes } from './routes.js';
export { registerFederationMetrics } from './metrics.js';
export { FedErrors } from './errors.js';
export type { RemoteHit } from './search.js';
export type { ExportPolicy } from './policy.js';
