/**
 * DNS_ERR_* catalogue. Codes are stable; retired codes are never reused.
 */
import { defineError } from '../src/errors/index.js';

export const DNS_ERR_BAD_OPTION = defineError(
  'DNS_ERR_BAD_OPTION',
  500,
  (what: string) => `invalid DNS option: ${what}`,
);
export const DNS_ERR_BAD_TSIG_KEY = defineError(
  'DNS_ERR_BAD_TSIG_KEY',
  500,
  (spec: string) => `invalid TSIG key "${spec}": expected name:hmac-sha256:base64secret`,
);
export const DNS_ERR_BAD_RECORD = defineError(
  'DNS_ERR_BAD_RECORD',
  400,
  (agentId: string, why: string) => `agent ${agentId}: cannot publish DNS records: ${why}`,
);
export const DNS_ERR_NOT_STARTED = defineError('DNS_ERR_NOT_STARTED', 500, () => 'DNS server is not started');
export const DNS_ERR_WORKER_FAILED = defineError(
  'DNS_ERR_WORKER_FAILED',
  500,
  (why: string) => `DNS worker failed: ${why}`,
);
