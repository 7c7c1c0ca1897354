/** src/backup: a consistent, portable copy of the whole store (`ans backup` / `ans restore`). */
export { dumpStore } from './dump.js';
export { readBackup, restoreStore, type BackupEvent } from './restore.js';
export { backupFileLines, gunzipLines } from './file.js';
export { backupRoutes } from './routes.js';
export { BackupErrors } from './errors.js';
export type { BackupSummary } from './format.js';
