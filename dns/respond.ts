/**
 * The answering engine: zone state (fed by load/upsert/remove), the IXFR journal and a cache of
 * encoded answers, plus the mapping from a request's bytes to response bytes (the ServeDNS step:
 * lookup result -> RCODE/AA, EDNS, truncation, transfers, TSIG). Sockets live in server.ts; every
 * process that answers (the single process, or each cluster worker) owns one Engine.
 */
import { TransferAcl } from './acl.js';
import { axfrRecords, transferResponse } from './axfr.js';
import { Journal, incrementalRecords, planIxfr } from './ixfr.js';
import { lookup } from './lookup.js';
import { nextSerial, toSerial } from './serial.js';
import { appendTsigError, findTsig, Keyring, signMessages, verifyRequest, type Key } from './tsig.js';
import type { DnsLogger, TsigKey, ZoneAgent } from './types.js';
import {
  assemble,
  encodeBody,
  encodeQuestion,
  errorBody,
  keyToName,
  parsePacket,
  scanQuery,
  EDNS_PAYLOAD,
  OPCODE,
  RCODE,
  TYPE,
  CLASS_IN,
  CLASS_ANY,
  type Body,
  type Edns,
  type WireRR,
} from './wire.js';
import { agentRecords, inZone, toZoneRRs, Zone, type ApexConfig, type RecordOptions, type ZoneRR } from './zone.js';

export interface EngineConfig {
  apex: ApexConfig;
  records: RecordOptions;
  journalSize: number;
  tsigKeys: TsigKey[];
  transferAcl: string[];
}

const CACHE_MAX = 200_000;

/** Told of a NOTIFY for a zone we are secondary for; true when it is accepted. */
export type NotifyHandler = (zone: string, peer: string, keyName: string | null) => boolean;
const nowSec = (): number => Math.floor(Date.now() / 1000);

export class Engine {
  zone: Zone;
  readonly agents = new Map<string, ZoneAgent>();
  private readonly journal: Journal;
  readonly keyring: Keyring;
  private readonly acl: TransferAcl;
  private cache = new Map<string, Body>();
  private cacheVersion = -1;
  private cacheZone: Zone | null = null;
  /** Zones we serve as a secondary (null: not transferred yet, or expired: SERVFAIL). */
  private readonly secondaries = new Map<string, Zone | null>();
  private secondaryGen = 0;
  private cacheGen = 0;
  onNotify: NotifyHandler | null = null;

  constructor(
    private readonly cfg: EngineConfig,
    private readonly log: DnsLogger,
  ) {
    this.zone = new Zone(cfg.apex, 0);
    this.journal = new Journal(cfg.journalSize);
    this.keyring = new Keyring(cfg.tsigKeys);
    this.acl = new TransferAcl(cfg.transferAcl);
  }

  get serial(): number {
    return this.zone.serial;
  }

  private records(agent: ZoneAgent): ZoneRR[] {
    const { records, problems } = agentRecords(agent, this.cfg.records);
    if (problems.length) this.log.warn({ agent: agent.id, problems }, 'dns: records skipped');
    return toZoneRRs(records);
  }

  /** Full build (start-up): replaces everything, clears the journal. */
  load(agents: readonly ZoneAgent[], serial: number): void {
    const zone = new Zone(this.cfg.apex, toSerial(serial));
    this.agents.clear();
    for (const a of agents) {
      this.agents.set(a.id, a);
      zone.setOwner(a.id, this.records(a));
    }
    this.zone = zone;
    this.journal.clear();
  }

  /** Adds or replaces one agent; returns the new serial. */
  upsert(agent: ZoneAgent, seq: number): number {
    this.agents.set(agent.id, agent);
    const diff = this.zone.setOwner(agent.id, this.records(agent));
    return this.commit(diff.removed, diff.added, seq);
  }

  remove(agentId: string, seq: number): number {
    this.agents.delete(agentId);
    const diff = this.zone.removeOwner(agentId);
    return this.commit(diff.removed, diff.added, seq);
  }

  private commit(removed: WireRR[], added: WireRR[], seq: number): number {
    const from = this.zone.serial;
    const to = nextSerial(from, seq);
    const soa = this.zone.setSerial(to);
    this.journal.add({ from, to, oldSoa: soa.removed, newSoa: soa.added, removed, added });
    return to;
  }

  /** Publishes (or withdraws, with null) a zone we are secondary for. */
  setSecondary(apex: string, zone: Zone | null): void {
    this.secondaries.set(apex, zone);
    this.secondaryGen++;
  }

  // ------------------------------------------------------------------------------------------
  // Answering

  /** The closest zone above a name, ours or a secondary (ours when none holds it: REFUSED). */
  private zoneFor(name: string): Zone | null {
    if (this.secondaries.size === 0) return this.zone;
    let best = inZone(name, this.zone.apex) ? this.zone.apex : '';
    let zone: Zone | null = this.zone;
    for (const [apex, z] of this.secondaries)
      if (apex.length > best.length && inZone(name, apex)) [best, zone] = [apex, z];
    return zone;
  }

  private body(key: string, qtype: number, fullAny: boolean): Body {
    const own = this.zone;
    if (
      this.cacheZone !== own ||
      this.cacheVersion !== own.version ||
      this.cacheGen !== this.secondaryGen ||
      this.cache.size > CACHE_MAX
    ) {
      this.cache = new Map();
      this.cacheZone = own;
      this.cacheVersion = own.version;
      this.cacheGen = this.secondaryGen;
    }
    const ck = fullAny ? `${key}\u0001${qtype}` : `${key}${qtype}`;
    let b = this.cache.get(ck);
    if (b) return b;
    const name = keyToName(key);
    const zone = this.zoneFor(name);
    if (!zone) return errorBody(RCODE.SERVFAIL);
    const la = lookup(zone, name, qtype, fullAny);
    switch (la.result) {
      case 'REFUSED':
        b = errorBody(RCODE.REFUSED);
        break;
      case 'HIT':
        b = encodeBody(name, zone.apex, RCODE.NOERROR, true, la.answer, la.authority, la.additional);
        break;
      case 'NODATA':
        b = encodeBody(name, zone.apex, RCODE.NOERROR, true, [], la.authority, [], zone.negativeTtl);
        break;
      case 'NXDOMAIN':
        b = encodeBody(name, zone.apex, RCODE.NXDOMAIN, true, [], la.authority, [], zone.negativeTtl);
        break;
    }
    this.cache.set(ck, b);
    return b;
  }

  /** RCODE for question types we do not look up, or -1. */
  private static metaRcode(qtype: number, qclass: number): number {
    if (qclass !== CLASS_IN && qclass !== CLASS_ANY) return RCODE.REFUSED;
    if (qtype === TYPE.OPT || qtype === TYPE.TSIG || qtype === 249 || qtype === 0) return RCODE.FORMERR;
    if (qtype === 253 || qtype === 254) return RCODE.NOTIMP; // MAILB, MAILA
    return -1;
  }

  private static limit(tcp: boolean, edns: Edns | null): number {
    if (tcp) return 65535;
    if (!edns) return 512;
    return Math.max(512, Math.min(edns.payload, EDNS_PAYLOAD));
  }

  /**
   * Response messages for one request, or null to drop it (responses, garbage too short to answer).
   * @param peer the client's address (transfer ACL)
   */
  answer(msg: Buffer, tcp: boolean, peer: string): Buffer[] | null {
    const q = scanQuery(msg);
    if (q && q.qtype !== TYPE.AXFR && q.qtype !== TYPE.IXFR) {
      let body: Body;
      if (q.edns && q.edns.version > 0) body = errorBody(RCODE.BADVERS);
      else {
        const meta = Engine.metaRcode(q.qtype, q.qclass);
        body = meta >= 0 ? errorBody(meta) : this.body(q.key, q.qtype, tcp && q.qtype === TYPE.ANY);
      }
      return [assemble(msg, q.id, q.flags, q.qStart, q.qEnd, body, q.edns, Engine.limit(tcp, q.edns))];
    }
    return this.slow(msg, tcp, peer);
  }

  private slow(msg: Buffer, tcp: boolean, peer: string): Buffer[] | null {
    if (msg.length < 12) return null;
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    if (flags & 0x8000) return null; // a response: never answered
    const headerOnly = (rcode: number, question: Buffer = Buffer.alloc(0), edns: Edns | null = null): Buffer[] => [
      assemble(question, id, flags, 0, question.length, errorBody(rcode), edns, 65535),
    ];
    let p;
    try {
      p = parsePacket(msg);
    } catch {
      return headerOnly(RCODE.FORMERR);
    }
    let question: Buffer = Buffer.alloc(0);
    if (p.questions.length === 1) {
      try {
        question = encodeQuestion(p.questions[0]!);
      } catch {
        return headerOnly(RCODE.FORMERR);
      }
    }
    const opcode = (flags >>> 11) & 0x0f;
    if (opcode !== OPCODE.QUERY && !(opcode === OPCODE.NOTIFY && this.onNotify))
      return headerOnly(RCODE.NOTIMP, question);
    if (p.errors.length > 0 || p.header.qdcount !== 1 || p.questions.length !== 1) return headerOnly(RCODE.FORMERR);
    const opts = p.additionals.filter((r) => r.type === TYPE.OPT);
    if (opts.length > 1 || (opts[0] && opts[0].name !== '')) return headerOnly(RCODE.FORMERR, question);
    const opt = opts[0];
    const edns: Edns | null = opt
      ? { payload: opt.class, version: (opt.ttl >>> 16) & 0xff, do: (opt.ttl & 0x8000) !== 0 }
      : null;

    // TSIG
    let signer: { key: Key; mac: Buffer } | null = null;
    const rec = findTsig(msg);
    if (rec === 'malformed') return headerOnly(RCODE.FORMERR, question, edns);
    if (rec) {
      const v = verifyRequest(msg, rec, this.keyring, nowSec());
      if (!v.ok) {
        this.log.warn({ peer, key: v.keyName, error: v.error }, 'dns: TSIG verification failed');
        const m = headerOnly(RCODE.NOTAUTH, question)[0]!;
        return [appendTsigError(m, v.keyName, v.originalId, v.error, nowSec())];
      }
      signer = { key: v.key, mac: v.mac };
    }
    const sign = (msgs: Buffer[]): Buffer[] => (signer ? signMessages(msgs, signer.key, signer.mac, nowSec()) : msgs);

    if (edns && edns.version > 0) return sign(headerOnly(RCODE.BADVERS, question, edns));
    const q = p.questions[0]!;
    const qname = q.name.toLowerCase().replace(/\.$/, '');
    const qtype = q.type;

    if (opcode === OPCODE.NOTIFY) {
      const ok = qtype === TYPE.SOA && this.onNotify!(qname, peer, signer ? signer.key.name : null);
      if (!ok) this.log.warn({ peer, zone: qname }, 'dns: NOTIFY refused');
      const ack: Body = ok ? { ...errorBody(RCODE.NOERROR), aa: true } : errorBody(RCODE.REFUSED);
      return sign([assemble(question, id, flags, 0, question.length, ack, edns, 65535)]);
    }

    if (qtype === TYPE.AXFR || qtype === TYPE.IXFR) {
      if (qtype === TYPE.AXFR && !tcp) return sign(headerOnly(RCODE.FORMERR, question, edns));
      if (q.class !== CLASS_IN) return sign(headerOnly(RCODE.REFUSED, question, edns));
      if (qname !== this.zone.apex) return sign(headerOnly(RCODE.NOTAUTH, question, edns));
      const decision = this.acl.decide(peer, signer !== null);
      if (decision !== 'allow') {
        this.log.warn({ peer, decision, qtype }, 'dns: zone transfer refused');
        return sign(headerOnly(RCODE.REFUSED, question, edns));
      }
      const zone = this.zone;
      if (qtype === TYPE.AXFR) {
        this.log.info({ peer, serial: zone.serial }, 'dns: AXFR');
        return sign(transferResponse(id, flags, question, axfrRecords(zone)));
      }
      const soa = p.authorities.find((r) => r.type === TYPE.SOA);
      if (!soa || typeof soa['serial'] !== 'number') return sign(headerOnly(RCODE.FORMERR, question, edns));
      const plan = planIxfr(this.journal, soa['serial'] as number, zone.serial);
      this.log.info({ peer, from: soa['serial'], serial: zone.serial, plan: plan.kind, tcp }, 'dns: IXFR');
      if (plan.kind === 'current' || !tcp) return sign(transferResponse(id, flags, question, [zone.soa]));
      if (plan.kind === 'full') return sign(transferResponse(id, flags, question, axfrRecords(zone)));
      return sign(transferResponse(id, flags, question, incrementalRecords(zone.soa, plan.chain)));
    }

    const meta = Engine.metaRcode(qtype, q.class);
    const body = meta >= 0 ? errorBody(meta) : this.body(nameKey(qname), qtype, tcp && qtype === TYPE.ANY);
    // the question bytes re-encoded by dns2 (case preserved) stand in for the request's
    let limit = Engine.limit(tcp, edns);
    if (signer && !tcp) limit -= 100; // room for the TSIG record
    return sign([assemble(question, id, flags, 0, question.length, body, edns, limit)]);
  }
}

function nameKey(name: string): string {
  if (name === '') return '\0';
  let s = '';
  for (const label of name.split('.')) s += String.fromCharCode(label.length) + label;
  return s + '\0';
}
