/** The agent-side kit: keys, CSRs and JWTs (used by `ans agent`, the demo, tests and benches). */
export { createKeyAndCsr, csrFor, type KeyKind } from './csr.js';
export { agentToken, pemToX5c, x5cToPem } from './token.js';
