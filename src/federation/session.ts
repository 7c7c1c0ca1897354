/**
 * One AMSP session with a neighbour: what we know of it (URI, zone, role, key), its hold timer,
 * its subscriptions to us, what we advertised to it (Adj-RIB-Out), and an ordered outbox that
 * is flushed as signed envelopes (one POST /amsp/v1/messages at a time, in order).
 */
import type { KeyObject } from 'node:crypto';
import type { VerifiedSigner } from './identity.js';
import type { Message, Role } from './types.js';

export type SessionState = 'established' | 'down';

export interface SessionInfo {
  uri: string;
  zone: string;
  role: Role;
  key: KeyObject;
  /** The peer's boot id (OPEN nonce); envelopes must carry it. */
  sid: string;
  holdTimeMs: number;
}

export type Poster = (uri: string, messages: Message[]) => Promise<void>;

/** Token bucket for the topics a peer subscribes: `perMinute` a minute, bursts up to a minute's worth. */
export class TopicBudget {
  private tokens: number;
  private at: number;
  constructor(
    readonly perMinute: number,
    now: number,
  ) {
    this.tokens = perMinute;
    this.at = now;
  }
  take(n: number, now: number): boolean {
    this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.at) * this.perMinute) / 60_000);
    this.at = now;
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }
}

export class Session {
  state: SessionState = 'established';
  lastHeard: number;
  lastSent = 0;
  /** Highest envelope counter accepted from the peer (replay guard). */
  lastN = 0;
  readonly topics = new Set<string>();
  /** How fast the peer may add topics (carried over a re-OPEN of the same boot). */
  subscribeBudget: TopicBudget;
  /** id -> what we last sent (path + record JWS), for incremental export. */
  readonly advertised = new Map<string, string>();
  /** Certificate chains (by x5t#S256) we sent in this session, and the ones the peer sent us. */
  readonly chainsSent = new Set<string>();
  readonly chains = new Map<string, { signer: VerifiedSigner; x5c: string[] }>();
  readonly stats = {
    messagesIn: 0,
    messagesOut: 0,
    envelopesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    withdrawsIn: 0,
    withdrawsOut: 0,
  };
  private outbox: Message[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;

  constructor(
    public info: SessionInfo,
    now: number,
    topicsPerMinute: number,
    private readonly post: Poster,
    private readonly onSendError: (s: Session, e: unknown) => void,
    private readonly batchMax = 500,
  ) {
    this.lastHeard = now;
    this.subscribeBudget = new TopicBudget(topicsPerMinute, now);
  }

  get uri(): string {
    return this.info.uri;
  }

  send(...msgs: Message[]): void {
    if (this.state !== 'established') return;
    this.outbox.push(...msgs);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** Sends everything queued, in order; resolves when the outbox is empty. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.outbox.length === 0 || this.state !== 'established') return;
    this.flushing = (async () => {
      while (this.outbox.length > 0 && this.state === 'established') {
        const batch = this.outbox.splice(0, this.batchMax);
        try {
          await this.post(this.info.uri, batch);
          this.stats.messagesOut += batch.length;
          this.stats.envelopesOut++;
          for (const m of batch)
            if (m.type === 'UPDATE') this.stats.updatesOut++;
            else if (m.type === 'WITHDRAW') this.stats.withdrawsOut++;
        } catch (e) {
          this.outbox = [];
          this.onSendError(this, e);
          return;
        }
      }
    })().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  close(): void {
    this.state = 'down';
    this.outbox = [];
    this.advertised.clear();
    this.chainsSent.clear();
  }
}
