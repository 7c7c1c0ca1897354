import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Command } from 'commander';
import { SemanticIndex } from '../../embeddings/index.js';
import { backupFileLines, gunzipLines, readBackup, restoreStore, type BackupSummary } from '../backup/index.js';
import { isAnsError } from '../errors/index.js';
import { openStore } from '../store/index.js';
import { adminToken, CliError, send, type ClientOptions } from './client.js';
import { clientOptions } from './common.js';

/** `ans backup FILE`: asks the running server for a copy, checks it, then writes FILE. */
export function backupCommand(): Command {
  return clientOptions(
    new Command('backup')
      .description('copy the whole store (registry, CA keys encrypted, audit, policies) into FILE (.jsonl.gz)')
      .argument('<FILE>', 'where to write the backup'),
  ).action(async (file: string, o: ClientOptions) => {
    const res = await send(o, 'GET', '/v1/admin/backup', { bearer: adminToken(o), accept: 'application/gzip' });
    const path = resolve(file);
    const tmp = `${path}.partial`;
    const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    // Written and checked in one pass: the file gets its name only once its end marker verifies.
    const toCheck = new PassThrough();
    body.pipe(toCheck);
    let summary: BackupSummary | undefined;
    try {
      const check = (async () => {
        for await (const ev of readBackup(gunzipLines(toCheck))) if (ev.kind === 'end') summary = ev.summary;
      })();
      await Promise.all([pipeline(body, createWriteStream(tmp, { mode: 0o600 })), check]);
      renameSync(tmp, path);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new CliError(`backup failed: ${(e as Error).message}`);
    }
    process.stdout.write(
      `wrote ${path}: ${summary!.tables} tables, ${summary!.rows} rows, sha256 ${summary!.sha256}\n`,
    );
  });
}

/** `ans restore FILE`: offline, into the store of --data-dir (PGlite) or DATABASE_URL. */
export function restoreCommand(): Command {
  return new Command('restore')
    .description('load a backup into an empty store (stop every ans serve using that store first)')
    .argument('<FILE>', 'a file written by ans backup')
    .option('--data-dir <DIR>', 'data directory whose embedded store to fill [env ANS_DATA_DIR] (default: ./.ans)')
    .option('--database-url <URL>', 'restore into this PostgreSQL instead [env DATABASE_URL]')
    .option('--force', 'replace whatever the target store holds')
    .action(async (file: string, o: { dataDir?: string; databaseUrl?: string; force?: boolean }) => {
      const dataDir = resolve(o.dataDir ?? process.env['ANS_DATA_DIR'] ?? './.ans');
      const databaseUrl = o.databaseUrl ?? process.env['DATABASE_URL'];
      const db = await openStore({ databaseUrl, dataDir });
      let s: BackupSummary;
      try {
        s = await restoreStore(db, backupFileLines(resolve(file)), { force: o.force === true });
      } catch (e) {
        if (isAnsError(e)) throw new CliError(`${e.code}: ${e.message} (nothing was restored)`);
        throw e;
      } finally {
        await db.close();
      }
      // The saved vector index describes the old store; the next start rebuilds it from the new one.
      SemanticIndex.discardSaved(dataDir);
      process.stdout.write(
        `restored ${s.rows} rows in ${s.tables} tables into ${databaseUrl ? 'PostgreSQL' : dataDir}\n` +
          'The CA keys stay encrypted with the passphrase of the installation that made the backup: ' +
          'start ans serve with that ANS_CA_PASSPHRASE (or its ca.passphrase file in the data dir).\n',
      );
    });
}
