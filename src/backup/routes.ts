import { PassThrough } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import type {} from '@fastify/swagger';
import { actorName, type AuditLog, type RequestAuth } from '../../ans/index.js';
import type { Db } from '../store/index.js';
import { dumpStore } from './dump.js';

/**
 * GET /v1/admin/backup (admin): the store as a gzip'ed backup, streamed while it is read. A failure
 * half way cuts the download; the missing end marker then makes `ans restore` refuse the file.
 */
export const backupRoutes: FastifyPluginAsync<{
  auth: RequestAuth;
  db: Db;
  audit: AuditLog;
  now: () => Date;
}> = async (app, o) => {
  app.get('/v1/admin/backup', { schema: { tags: ['admin'] } }, async (req, reply) => {
    const by = await o.auth.admin(req);
    const gzip = createGzip();
    const out = new PassThrough();
    gzip.pipe(out);
    // A client that goes away must not leave the dump (and its transaction) waiting on a drain.
    out.once('close', () => gzip.destroy());
    const write = (line: string) =>
      new Promise<void>((res, rej) => {
        if (gzip.destroyed) return rej(new Error('the client went away'));
        if (gzip.write(line)) return res();
        const onDrain = () => {
          gzip.off('close', onClose);
          res();
        };
        const onClose = () => {
          gzip.off('drain', onDrain);
          rej(new Error('the client went away'));
        };
        gzip.once('drain', onDrain);
        gzip.once('close', onClose);
      });
    void run(o, actorName(by), write, gzip, out, req.log);
    const stamp = o.now().toISOString().replace(/[:.]/g, '-');
    return reply
      .type('application/gzip')
      .header('content-disposition', `attachment; filename="ans-backup-${stamp}.jsonl.gz"`)
      .send(out);
  });
};

async function run(
  o: { db: Db; audit: AuditLog; now: () => Date },
  actor: string,
  write: (line: string) => Promise<void>,
  gzip: ReturnType<typeof createGzip>,
  out: PassThrough,
  log: FastifyBaseLogger,
): Promise<void> {
  try {
    const s = await dumpStore(o.db, write, o.now);
    gzip.end();
    log.info({ tables: s.tables, rows: s.rows, sha256: s.sha256 }, 'backup written');
    // After the snapshot, so the copy never holds its own audit entry.
    await o.audit.append(o.db, { actor, action: 'store.backup', detail: { ...s } });
  } catch (e) {
    log.error({ err: (e as Error).message }, 'backup failed; the download is cut');
    gzip.destroy();
    out.destroy(e as Error);
  }
}
