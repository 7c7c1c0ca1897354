/**
 * NOTIFY (RFC 1996): tell secondaries the serial changed. Each target gets the newest serial; a
 * change while one is in flight replaces it. Retries until the secondary answers (or gives up).
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { encodeQuestion, rrBytes, CLASS_IN, OPCODE, TYPE, type WireRR } from './wire.js';
import { signMessages, type Key } from './tsig.js';
import type { DnsLogger } from './types.js';
import { DNS_ERR_BAD_OPTION } from './errors.js';

export interface NotifyTarget {
  host: string;
  port: number;
}

export function parseTarget(spec: string): NotifyTarget {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(spec.trim()) ?? (isIP(spec.trim()) ? [spec, spec.trim(), '53'] : null);
  if (!m || isIP(m[1]!) === 0 || Number(m[2]) < 1 || Number(m[2]) > 65535)
    throw DNS_ERR_BAD_OPTION(`notify target "${spec}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

interface Pending {
  id: number;
  serial: number;
  tries: number;
  timer: NodeJS.Timeout | null;
}

/** The NOTIFY message: opcode 4, AA, question <zone> SOA, the SOA in the answer section. */
export function notifyMessage(id: number, zone: string, soa: WireRR): Buffer {
  const q = encodeQuestion({ name: zone, type: TYPE.SOA, class: CLASS_IN });
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h[2] = (OPCODE.NOTIFY << 3) | 0x04;
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(1, 6);
  return Buffer.concat([h, q, rrBytes(soa)]);
}

export class Notifier {
  private sock4: Socket | null = null;
  private sock6: Socket | null = null;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(
    private readonly zone: string,
    private readonly targets: NotifyTarget[],
    private readonly key: Key | undefined,
    private readonly log: DnsLogger,
    private readonly retryMs = 2000,
    private readonly maxTries = 5,
  ) {}

  private socket(host: string): Socket {
    const v6 = isIP(host) === 6;
    let s = v6 ? this.sock6 : this.sock4;
    if (!s) {
      s = createSocket(v6 ? 'udp6' : 'udp4');
      s.on('message', (msg, rinfo) => this.onReply(msg, rinfo.address, rinfo.port));
      s.on('error', (err) => this.log.warn({ err: err.message }, 'dns notify socket error'));
      s.unref();
      if (v6) this.sock6 = s;
      else this.sock4 = s;
    }
    return s;
  }

  private onReply(msg: Buffer, host: string, port: number): void {
    if (msg.length < 12 || !(msg[2]! & 0x80)) return;
    for (const [k, p] of this.pending) {
      const t = this.targets.find((x) => `${x.host}:${x.port}` === k);
      if (!t || p.id !== msg.readUInt16BE(0) || port !== t.port) continue;
      if (host.replace(/^::ffff:/, '') !== t.host.replace(/^::ffff:/, '')) continue;
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(k);
      this.log.info({ target: k, serial: p.serial, rcode: msg[3]! & 0x0f }, 'dns notify acknowledged');
    }
  }

  /** Notifies every target of `soa` (the current SOA record; its serial is `serial`). */
  notify(serial: number, soa: WireRR): void {
    if (this.closed) return;
    for (const t of this.targets) {
      const k = `${t.host}:${t.port}`;
      const old = this.pending.get(k);
      if (old?.timer) clearTimeout(old.timer);
      const p: Pending = { id: randomInt(0x10000), serial, tries: 0, timer: null };
      this.pending.set(k, p);
      this.send(t, k, p, soa);
    }
  }

  private send(t: NotifyTarget, k: string, p: Pending, soa: WireRR): void {
    if (this.closed || this.pending.get(k) !== p) return;
    p.tries++;
    let msg = notifyMessage(p.id, this.zone, soa);
    if (this.key) msg = signMessages([msg], this.key, Buffer.alloc(0), Math.floor(Date.now() / 1000))[0]!;
    this.socket(t.host).send(msg, t.port, t.host, (err) => {
      if (err) this.log.warn({ target: k, err: err.message }, 'dns notify send failed');
    });
    if (p.tries < this.maxTries) {
      p.timer = setTimeout(() => this.send(t, k, p, soa), this.retryMs);
      p.timer.unref();
    } else {
      p.timer = setTimeout(() => {
        if (this.pending.get(k) === p) {
          this.pending.delete(k);
          this.log.warn({ target: k, serial: p.serial }, 'dns notify not acknowledged');
        }
      }, this.retryMs);
      p.timer.unref();
    }
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.pending.clear();
    this.sock4?.close();
    this.sock6?.close();
    this.sock4 = this.sock6 = null;
  }
}
