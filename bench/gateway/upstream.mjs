// The small upstream for bench/gateway: a fixed 'hello' answer on /, 1 GB streamed on /big,
// and a byte counter for uploads on /sink. Runs as its own process.
import { createServer } from 'node:http';

const HELLO = Buffer.from('hello world\n');
const CHUNK = Buffer.alloc(64 * 1024, 120);
const srv = createServer((req, res) => {
  if (req.url.startsWith('/big')) {
    const total = Number(new URL(req.url, 'http://x').searchParams.get('bytes') ?? 1024 ** 3);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(CHUNK.length, total - sent);
        sent += n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  if (req.url.startsWith('/sink')) {
    let n = 0;
    req.on('data', (c) => (n += c.length));
    req.on('end', () => res.end(String(n)));
    return;
  }
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': HELLO.length });
  res.end(HELLO);
});
srv.keepAliveTimeout = 60_000;
srv.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => process.stdout.write(`${srv.address().port}\n`));
