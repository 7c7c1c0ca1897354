import { defineError } from '../errors/index.js';

export const BackupErrors = {
  badFile: defineError('BACKUP_ERR_BAD_FILE', 400, (why: string) => `not a usable ANS backup: ${why}`),
  notEmpty: defineError(
    'BACKUP_ERR_NOT_EMPTY',
    409,
    (table: string) => `the target store is not empty (table ${table} has rows); restore with --force to replace it`,
  ),
  schema: defineError('BACKUP_ERR_SCHEMA', 409, (why: string) => `the backup does not fit this ANS: ${why}`),
};
