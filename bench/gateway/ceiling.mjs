// The ceiling for a Node proxy on this machine: a bare http server streaming the upstream's
// answer back, nothing else. Compare the gateway against it. The upstream leg is undici's
// Pool.dispatch (llhttp in wasm; what the gateway uses) or, with `agent` as the third argument,
// node:http's keep-alive Agent (llhttp in C).
import { Agent, createServer, request } from 'node:http';
import { Pool } from 'undici';
const [, , upPort, port, client = 'undici'] = process.argv;
const pool = new Pool(`http://127.0.0.1:${upPort}`, { connections: 128, pipelining: 1 });
const agent = new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });
const viaUndici = (req, res) =>
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
const viaAgent = (req, res) =>
  request({ host: '127.0.0.1', port: upPort, path: '/', method: req.method, agent }, (up) => {
    res.writeHead(up.statusCode, up.rawHeaders);
    up.pipe(res);
  })
    .on('error', (e) => res.destroy(e))
    .end();
createServer(client === 'agent' ? viaAgent : viaUndici).listen(Number(port), '127.0.0.1', () => {
  if (!process.send) console.log('ready');
});
