// Creates a PGlite cluster in the directory argv[2] and exits (see openPglite in pglite.ts: initdb
// leaves ~175 MB in the process that runs it, so it runs here, in a short-lived child).
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';

const [dir, conf] = process.argv.slice(2);
const pg = new PGlite(dir, { extensions: { vector }, postgresqlconf: JSON.parse(conf) });
await pg.waitReady;
await pg.exec('CREATE EXTENSION IF NOT EXISTS vector');
await pg.close();
