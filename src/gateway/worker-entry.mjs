// A gateway data-plane worker process (see plane.ts). Compiled (dist/), it runs the JavaScript
// beside it; from the sources it loads the TypeScript through tsx, as bin/ans.mjs does.
import { existsSync } from 'node:fs';

if (existsSync(new URL('./worker.js', import.meta.url))) {
  await import('./worker.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./worker.ts');
}
