import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BackupErrors } from './errors.js';

/** The lines of a gzip'ed backup stream; a stream that is not gzip is a bad file, not a crash. */
export async function* gunzipLines(input: Readable): AsyncGenerator<string> {
  const gunzip = createGunzip();
  input.on('error', (e) => gunzip.destroy(e));
  const rl = createInterface({ input: input.pipe(gunzip), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw e;
    throw BackupErrors.badFile(`cannot decompress it (${(e as Error).message})`);
  } finally {
    rl.close();
  }
}

export function backupFileLines(path: string): AsyncGenerator<string> {
  return gunzipLines(createReadStream(path));
}
