#!/usr/bin/env node
// The `ans` executable. It runs the JavaScript that `npm ci` (the prepare script) or `npm run build`
// compiles into dist/: loading TypeScript through tsx costs every process ~70 MB of memory and a
// slower start. When a source file is newer than that build (someone is editing), it loads the
// sources through tsx instead, so it never runs stale code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const built = join(root, 'dist/src/cli/index.js');

function newestSource(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (/\.(ts|mjs)$/.test(e.name)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

const fresh =
  existsSync(built) &&
  Math.max(...['src', 'ans', 'ca', 'dns', 'embeddings'].map((d) => newestSource(join(root, d)))) <=
    statSync(built).mtimeMs;
if (fresh) {
  await import(built);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/index.ts');
}
