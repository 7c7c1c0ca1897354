import { defineError } from '../errors/index.js';

export const AuthErrors = {
  missing: defineError('AUTH_ERR_MISSING', 401, () => 'this call needs Authorization: Bearer <token>'),
  badAdminToken: defineError('AUTH_ERR_BAD_ADMIN_TOKEN', 401, () => 'the admin token is not valid'),
  badAgentToken: defineError('AUTH_ERR_BAD_AGENT_TOKEN', 401, (why: string) => `the agent token is not valid: ${why}`),
  adminOnly: defineError('AUTH_ERR_ADMIN_ONLY', 403, () => 'this call needs an admin token'),
} as const;
