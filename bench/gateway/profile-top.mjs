// Summarises a .cpuprofile: self time by function and by file (top N), for finding hot spots.
//
//   node bench/gateway/profile-top.mjs PROFILE [N] [--window S] [--requests R]
//
// --window S keeps only the busiest S seconds (the load run, not start-up or shutdown);
// --requests R (the calls served in that window) adds microseconds per call to each line.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { window: { type: 'string' }, requests: { type: 'string' } },
});
const p = JSON.parse(readFileSync(positionals[0], 'utf8'));
const n = Number(positionals[1] ?? 30);
const byId = new Map(p.nodes.map((x) => [x.id, x]));
const dts = p.timeDeltas;
const isIdle = (id) => byId.get(id).callFrame.functionName === '(idle)';

// The samples to count: all, or the window of `--window` seconds with the least idle time.
let from = 0;
let to = p.samples.length;
if (values.window) {
  const win = Number(values.window) * 1e6;
  const at = [];
  let t = 0;
  for (const d of dts) at.push((t += d));
  let busy = 0;
  let best = -1;
  for (let i = 0, j = 0; i < at.length; i++) {
    for (; j < at.length && at[j] - at[i] < win; j++) if (!isIdle(p.samples[j])) busy += dts[j];
    if (busy > best) [best, from, to] = [busy, i, j];
    if (!isIdle(p.samples[i])) busy -= dts[i];
  }
}
const dt = new Map();
for (let i = from; i < to; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (dts[i] ?? 0));
const fn = new Map();
const file = new Map();
let total = 0;
let idle = 0;
for (const [id, t] of dt) {
  const cf = byId.get(id).callFrame;
  const f = cf.url.startsWith('wasm')
    ? 'wasm (pglite)'
    : cf.url.split('/node_modules/').pop().split('/').slice(0, 2).join('/') || cf.functionName;
  const name = `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`;
  fn.set(name, (fn.get(name) ?? 0) + t);
  file.set(f, (file.get(f) ?? 0) + t);
  total += t;
  if (cf.functionName === '(idle)') idle += t;
}
const perCall = values.requests ? Number(values.requests) : undefined;
const show = (m) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .forEach(([k, t]) =>
      console.log(
        `${((t / total) * 100).toFixed(1).padStart(5)}%${perCall ? `${(t / perCall).toFixed(1).padStart(7)} us` : ''}  ${k}`,
      ),
    );
console.log(
  `total ${(total / 1e6).toFixed(1)} s, busy ${((total - idle) / 1e6).toFixed(1)} s` +
    (perCall ? `, ${((total - idle) / perCall).toFixed(1)} us busy per call` : ''),
);
console.log('-- by file --');
show(file);
console.log('-- by function --');
show(fn);
