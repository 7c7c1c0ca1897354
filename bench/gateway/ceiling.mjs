// The ceiling for a Node proxy on this machine: a bare http server + undici Pool.dispatch
// streaming the answer back, nothing else. Compare the gateway against it.
import { createServer } from 'node:http';
import { Pool } from 'undici';
const [, , upPort, port] = process.argv;
const pool = new Pool(`http://127.0.0.1:${upPort}`, { connections: 128, pipelining: 1 });
createServer((req, res) => {
  pool.dispatch(
    { path: '/', method: req.method, headers: ['host', `127.0.0.1:${upPort}`], body: null },
    {
      onRequestStart() {},
      onResponseStart(_c, status, headers) {
        res.writeHead(status, headers);
      },
      onResponseData(_c, chunk) {
        res.write(chunk);
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_c, e) {
        res.destroy(e);
      },
    },
  );
}).listen(Number(port), '127.0.0.1', () => {
  if (!process.send) console.log('ready');
});
