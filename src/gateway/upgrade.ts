/**
 * WebSocket through the gateway. `GET /gw/<fqdn>/<path>` with `Upgrade: websocket` goes through
 * the same phases as any call (`Gateway.upgrade`); then the upgrade is dispatched on the
 * replica's undici pool (same TLS checks, connect and first-byte timeouts). A 101 joins the two
 * sockets — bytes piped both ways, backpressure kept, until either side closes; any other answer
 * is passed back to the client and the connection closed. Other Upgrade requests (h2c, or
 * paths outside `/gw/`) are served as ordinary HTTP requests: a client cannot insist on a
 * protocol change.
 */
import { STATUS_CODES, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

/** Whether the request asks for a WebSocket (any other upgrade is served as plain HTTP). */
export function wantsWebSocket(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.toLowerCase() === 'websocket';
}

/** How long a side that has ended may take to close before its socket is destroyed. */
const LINGER_MS = 5_000;

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** An HTTP/1.1 response head for a raw socket; hop-by-hop fields dropped, `extra` appended. */
export function responseHead(
  status: number,
  message: string | undefined,
  headers: Record<string, string | string[] | undefined>,
  extra: [string, string][],
): string {
  let out = `HTTP/1.1 ${status} ${message || STATUS_CODES[status] || ''}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP.has(name) || (status !== 101 && name === 'content-length')) continue;
    for (const x of Array.isArray(v) ? v : [v]) {
      if (/[\r\n]/.test(x)) continue;
      out += `${name}: ${x}\r\n`;
    }
  }
  for (const [k, v] of extra) out += `${k}: ${v}\r\n`;
  return `${out}\r\n`;
}

/** Writes a complete answer on a raw socket and closes it. */
export function endSocket(
  socket: Duplex,
  status: number,
  headers: Record<string, string | number>,
  body: string,
): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  socket.end(head + body);
}

export interface TunnelResult {
  /** 101 when joined, the upstream's status otherwise, 0 when nothing was answered. */
  status: number;
  bytesIn: number;
  bytesOut: number;
  err: (Error & { code?: string }) | undefined;
  /** Something was written to the client already. */
  answered: boolean;
}

export interface TunnelArgs {
  pool: Dispatcher;
  path: string;
  headers: string[];
  client: Duplex;
  head: Buffer;
  firstByteMs: number;
  /** Called once the sockets are joined, with a function that closes the tunnel. */
  onOpen?: (close: () => void) => void;
}

/**
 * Joins two sockets until both are closed: each side's end is passed on (the other side
 * then has LINGER_MS to finish), an error or reset on either side destroys both.
 */
function join(a: Duplex, b: Duplex, counted: { in: number; out: number }, done: () => void): () => void {
  let closed = 0;
  const destroyBoth = () => {
    a.destroy();
    b.destroy();
  };
  // Upgraded sockets are half-open: once either side has ended, both must close in time.
  let linger: NodeJS.Timeout | undefined;
  const arm = () => {
    if (linger) return;
    linger = setTimeout(destroyBoth, LINGER_MS);
    linger.unref();
  };
  const onClose = (other: Duplex) => (hadError: boolean) => {
    if (hadError) other.destroy();
    else if (!other.destroyed) {
      other.end();
      arm();
    }
    if (++closed === 2) {
      if (linger) clearTimeout(linger);
      done();
    }
  };
  a.on('data', (c: Buffer) => (counted.in += c.length));
  b.on('data', (c: Buffer) => (counted.out += c.length));
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.once('end', arm);
  b.once('end', arm);
  a.once('close', onClose(b));
  b.once('close', onClose(a));
  a.pipe(b);
  b.pipe(a);
  return destroyBoth;
}

/** One upgrade attempt against one upstream; resolves when the tunnel (or the answer) is over. */
export function tunnel(a: TunnelArgs): Promise<TunnelResult> {
  return new Promise((resolve) => {
    const client = a.client;
    const counted = { in: 0, out: 0 };
    let status = 0;
    let answered = false;
    let settled = false;
    const finish = (err?: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      client.removeListener('close', onClientClose);
      resolve({ status, bytesIn: counted.in, bytesOut: counted.out, err, answered });
    };
    let controller: Dispatcher.DispatchController | undefined;
    const onClientClose = () => {
      if (status !== 101)
        controller?.abort(Object.assign(new Error('client closed the connection'), { code: 'UND_ERR_ABORTED' }));
    };
    client.once('close', onClientClose);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (client.destroyed) onClientClose();
      },
      onRequestUpgrade(_c, statusCode, headers, socket) {
        status = statusCode;
        if (client.destroyed) {
          socket.destroy();
          finish();
          return;
        }
        answered = true;
        client.write(
          responseHead(statusCode, 'Switching Protocols', headers as Record<string, string | string[] | undefined>, [
            ['connection', 'Upgrade'],
            ['upgrade', String(headers['upgrade'] ?? 'websocket')],
          ]),
        );
        if (a.head.length > 0) {
          counted.in += a.head.length;
          socket.write(a.head);
        }
        const close = join(client, socket, counted, () => finish());
        a.onOpen?.(close);
      },
      onResponseStart(_c, statusCode, headers, statusMessage) {
        if (statusCode < 200) return;
        // The agent declined the upgrade: its answer goes back as is, then the connection closes.
        status = statusCode;
        answered = true;
        client.write(responseHead(statusCode, statusMessage, headers, [['connection', 'close']]));
      },
      onResponseData(c, chunk) {
        counted.out += chunk.length;
        if (!client.write(chunk)) {
          c.pause();
          client.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        client.end();
        finish();
      },
      onResponseError(_c, err) {
        if (answered) client.destroy();
        finish(err);
      },
    };
    a.pool.dispatch(
      {
        path: a.path,
        method: 'GET',
        headers: a.headers,
        upgrade: 'websocket',
        headersTimeout: a.firstByteMs,
      },
      handler,
    );
  });
}

/**
 * Listens for upgrades on `server`: WebSocket requests under `/gw/` go to `onWebSocket`;
 * everything else is handed to the server's `request` listeners as a plain request (the
 * connection closes after the answer).
 */
export function listenForUpgrades(
  server: Server,
  onWebSocket: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url?.startsWith('/gw/') && wantsWebSocket(req)) {
      onWebSocket(req, socket, head);
      return;
    }
    const len = req.headers['content-length'];
    if (req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0')) {
      // The parser has let go of this connection: a body cannot be read as HTTP any more.
      endSocket(
        socket,
        400,
        { 'content-type': 'application/problem+json' },
        JSON.stringify({
          type: 'about:blank',
          title: 'Bad Request',
          status: 400,
          detail: 'a request with a body cannot ask for a protocol upgrade here',
        }),
      );
      return;
    }
    if (head.length > 0) socket.unshift(head);
    req.push(null);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    res.once('finish', () => {
      res.detachSocket(socket as never);
      socket.end();
    });
    server.emit('request', req, res);
  });
}
