// A gateway data-plane worker process (see plane.ts): loads the TypeScript sources through tsx,
// like bin/ans.mjs does.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
