/**
 * Pure lookup: (name, type) -> sections + result. No packets, no sockets: server code maps the
 * result to RCODE/AA and writes (like CoreDNS's Zone.Lookup / Knot's internet.c states).
 */
import { inZone, type Zone, type ZoneRR } from './zone.js';
import { TYPE } from './wire.js';

export type LookupResult = 'HIT' | 'NODATA' | 'NXDOMAIN' | 'REFUSED';

export interface LookupAnswer {
  result: LookupResult;
  answer: ZoneRR[];
  authority: ZoneRR[];
  additional: ZoneRR[];
}

const EMPTY: ZoneRR[] = [];

function addressesOf(zone: Zone, name: string): ZoneRR[] {
  const node = zone.node(name);
  if (!node) return EMPTY;
  return node.filter((z) => z.type === TYPE.A || z.type === TYPE.AAAA);
}

/**
 * @param name lower case, no trailing dot
 * @param qtype query type (ANY answered minimally unless `fullAny`, RFC 8482)
 */
export function lookup(zone: Zone, name: string, qtype: number, fullAny = false): LookupAnswer {
  if (!inZone(name, zone.apex)) return { result: 'REFUSED', answer: EMPTY, authority: EMPTY, additional: EMPTY };
  const node = zone.node(name);
  if (!node) {
    const result = zone.isEnt(name) ? 'NODATA' : 'NXDOMAIN';
    return { result, answer: EMPTY, authority: [zone.soa], additional: EMPTY };
  }
  let answer: ZoneRR[];
  if (qtype === TYPE.ANY) {
    if (fullAny) answer = node.slice();
    else {
      // RFC 8482 4.2: one RRset, the first one in a stable order
      const first = node.reduce((m, z) => (z.type < m ? z.type : m), 0xffff);
      answer = node.filter((z) => z.type === first);
    }
  } else {
    answer = node.filter((z) => z.type === qtype);
  }
  if (answer.length === 0) return { result: 'NODATA', answer: EMPTY, authority: [zone.soa], additional: EMPTY };
  const additional: ZoneRR[] = [];
  for (const z of answer) {
    // in-zone glue for SRV targets and name servers
    let target: string | undefined;
    if (z.type === TYPE.SRV) target = z.target;
    else if (z.type === TYPE.NS && name === zone.apex) target = zone.nsTarget;
    if (target && target !== name && inZone(target, zone.apex)) {
      for (const a of addressesOf(zone, target)) if (!additional.includes(a)) additional.push(a);
    }
  }
  return { result: 'HIT', answer, authority: EMPTY, additional };
}
