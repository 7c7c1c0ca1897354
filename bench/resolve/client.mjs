// The load generator for bench/resolve's HTTP figures, in its own process as real clients are
// (so the server's event loop carries only the server): `concurrency` callers send GET
// /v1/resolve for each query of a JSON file in turn and print every latency (ms) as one JSON line.
//   node bench/resolve/client.mjs URL QUERIES.json COUNT [CONCURRENCY] [DEADLINE_MS]
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

const [, , url, file, countArg, concArg = '4', deadlineArg = '20000'] = process.argv;
const queries = JSON.parse(readFileSync(file, 'utf8'));
const count = Number(countArg);
const pool = new Pool(url, { connections: Number(concArg) });
const deadline = Date.now() + Number(deadlineArg);
const times = [];
let next = 0;
let failed = 0;
await Promise.all(
  Array.from({ length: Number(concArg) }, async () => {
    while (next < count && Date.now() < deadline) {
      const q = queries[next++ % queries.length];
      const t = performance.now();
      const r = await pool.request({ path: `/v1/resolve?k=5&q=${encodeURIComponent(q)}`, method: 'GET' });
      const body = await r.body.json();
      if (r.statusCode !== 200 || !body.jws) failed++;
      times.push(performance.now() - t);
    }
  }),
);
await pool.close();
process.stdout.write(JSON.stringify({ times, failed }) + '\n');
