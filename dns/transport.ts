/**
 * The sockets: UDP datagrams and TCP streams (RFC 7766: several queries per connection, idle
 * timeout, a cap on connections that evicts the longest-idle one so slow or half-open clients
 * cannot exhaust the server). The only code that writes DNS messages to the network; used by the
 * single-process server and by each cluster worker.
 */
import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import type { Server, Socket } from 'node:net';
import type { DnsLogger } from './types.js';

export interface Answerer {
  answer(msg: Buffer, tcp: boolean, peer: string): Buffer[] | null;
}

export interface TcpLimits {
  idleMs: number;
  maxConnections: number;
}

export function serveUdp(sock: UdpSocket, engine: Answerer, log: DnsLogger): void {
  let errors = 0;
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    let out: Buffer[] | null;
    try {
      out = engine.answer(msg, false, rinfo.address);
    } catch (err) {
      if (errors++ < 10) log.error({ err: (err as Error).message, peer: rinfo.address }, 'dns: udp answer failed');
      return;
    }
    if (out) for (const m of out) sock.send(m, rinfo.port, rinfo.address);
  });
  sock.on('error', (err) => log.warn({ err: err.message }, 'dns: udp socket error'));
}

interface Conn {
  sock: Socket;
  lastActive: number;
  busy: boolean;
}

export function serveTcp(server: Server, engine: Answerer, limits: TcpLimits, log: DnsLogger): () => void {
  const conns = new Set<Conn>();
  server.on('connection', (sock: Socket) => {
    if (conns.size >= limits.maxConnections) {
      // evict the longest-idle connection that is not mid-transfer (RFC 7766 6.2.3)
      let victim: Conn | null = null;
      for (const c of conns) if (!c.busy && (!victim || c.lastActive < victim.lastActive)) victim = c;
      if (victim) {
        victim.sock.destroy();
        conns.delete(victim);
      } else {
        sock.destroy();
        return;
      }
    }
    const conn: Conn = { sock, lastActive: Date.now(), busy: false };
    conns.add(conn);
    sock.setNoDelay(true);
    sock.setTimeout(limits.idleMs, () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let partialSince = 0;
    const queue: Buffer[] = [];
    const drain = async (): Promise<void> => {
      if (conn.busy) return;
      conn.busy = true;
      try {
        while (queue.length && !sock.destroyed) {
          const msg = queue.shift()!;
          let out: Buffer[] | null = null;
          try {
            out = engine.answer(msg, true, sock.remoteAddress ?? '');
          } catch (err) {
            log.error({ err: (err as Error).message }, 'dns: tcp answer failed');
            sock.destroy();
            return;
          }
          if (!out) continue;
          for (const m of out) {
            const len = Buffer.allocUnsafe(2);
            len.writeUInt16BE(m.length);
            sock.write(len);
            if (!sock.write(m))
              await new Promise<void>((r) => {
                const done = (): void => {
                  sock.off('drain', done);
                  sock.off('close', done);
                  r();
                };
                sock.on('drain', done);
                sock.on('close', done);
              });
            if (sock.destroyed) return;
          }
        }
      } finally {
        conn.busy = false;
        conn.lastActive = Date.now();
      }
    };
    sock.on('data', (chunk: Buffer) => {
      conn.lastActive = Date.now();
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        queue.push(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
      }
      if (buf.length > 0) {
        // a message trickling in slower than the idle timeout is a slowloris: drop it
        if (!partialSince) partialSince = Date.now();
        else if (Date.now() - partialSince > limits.idleMs) sock.destroy();
      } else partialSince = 0;
      if (queue.length > 64) {
        sock.destroy(); // pipelining far ahead of reading answers
        return;
      }
      void drain();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => conns.delete(conn));
  });
  server.on('error', (err) => log.warn({ err: err.message }, 'dns: tcp server error'));
  return () => {
    for (const c of conns) c.sock.destroy();
    conns.clear();
  };
}
