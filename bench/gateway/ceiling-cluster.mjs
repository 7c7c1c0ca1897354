// The bare Node proxy (ceiling.mjs) in N cluster workers sharing the port: whether more
// proxy processes help on this machine, where the load generator and the upstream also run.
import cluster from 'node:cluster';

const n = Number(process.argv[4] ?? 2);
if (cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < n; i++) {
    cluster.fork().on('message', () => {
      if (++ready === n) console.log('ready');
    });
  }
} else {
  await import('./ceiling.mjs');
  process.send?.('ready');
}
