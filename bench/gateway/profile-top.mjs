// Summarises a .cpuprofile: self time by function and by file (top N), for finding hot spots.
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const n = Number(process.argv[3] ?? 30);
const byId = new Map(p.nodes.map((x) => [x.id, x]));
const dt = new Map();
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const fn = new Map();
const file = new Map();
let total = 0;
for (const [id, t] of dt) {
  const cf = byId.get(id).callFrame;
  const f = cf.url.startsWith('wasm')
    ? 'wasm (pglite)'
    : cf.url.split('/node_modules/').pop().split('/').slice(0, 2).join('/') || cf.functionName;
  fn.set(
    `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`,
    (fn.get(`${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`) ?? 0) + t,
  );
  file.set(f, (file.get(f) ?? 0) + t);
  total += t;
}
const show = (m) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .forEach(([k, t]) => console.log(`${((t / total) * 100).toFixed(1).padStart(5)}%  ${k}`));
console.log(`total ${(total / 1e6).toFixed(1)} s`);
console.log('-- by file --');
show(file);
console.log('-- by function --');
show(fn);
