import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

function tcpFree(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const a = s.address();
      const p = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(p));
    });
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port free for both TCP and UDP on 127.0.0.1 (DNS listens on both). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await tcpFree(0);
    if (await udpFree(p)) return p;
  }
  throw new Error('no free port');
}
