/** AMSP v1 wire types (docs/amsp.md). Plain data; validation lives in wire.ts. */

export const AMSP_VERSION = 1;
export type Role = 'l1' | 'l2';

export interface RecordSkill {
  id: string;
  name: string;
  description?: string;
  tags?: string[];
}

/** The payload an originating gateway signs (compact JWS; header x5c, or x5t#S256 naming a CHAIN). */
export interface AgentRecord {
  id: string;
  fqdn: string; // lower case, no trailing dot
  domain: string; // the zone, no trailing dot
  name: string;
  version: string;
  description?: string; // redactable
  skills?: RecordSkill[]; // redactable
  tags: string[]; // skill tags, kept for filtering even when skills are redacted
  protocols: string[];
  /** Always the originating gateway's URLs: `<origin>/gw/<fqdn>/` (topology hiding). */
  endpoints: { protocol: string; url: string }[];
  origin: string; // the originating gateway's URI (its public URL)
  /** Origin's change sequence; a receiver ignores an older seq for the same id and origin. */
  seq: number;
  embedding?: { embedder: string; vector: number[] };
}

export type Message =
  | { type: 'KEEPALIVE' }
  | { type: 'UPDATE'; path: string[]; record: string } // record = originator's compact JWS
  | { type: 'WITHDRAW'; id: string }
  | { type: 'END_OF_RIB' }
  | { type: 'CHAIN'; x5c: string[] } // an originator's certificate chain, sent once per session
  | { type: 'SUBSCRIBE'; topics: string[] }
  | { type: 'UNSUBSCRIBE'; topics: string[] }
  | { type: 'NOTIFICATION'; code: NotificationCode; reason: string };

export type NotificationCode = 'CEASE' | 'HOLD_TIMER_EXPIRED' | 'BAD_MESSAGE' | 'UNTRUSTED' | 'RATE_LIMITED';

/** OPEN payload (signed by the sender, header x5c = its gateway certificate chain). */
export interface OpenPayload {
  type: 'OPEN';
  version: number;
  gateway: string;
  zone: string;
  role: Role;
  holdTime: number; // seconds
  /** The receiver's URI as the sender knows it (the dialled base URL). */
  aud: string;
  iat: number;
  nonce: string;
}

/** One POST to /amsp/v1/messages: a batch signed hop-by-hop by the sending gateway. */
export interface Envelope {
  iss: string; // sender gateway URI
  aud: string; // receiver gateway URI
  sid: string; // session id from OPEN
  n: number; // batch counter, strictly increasing per session
  iat: number;
  messages: Message[];
}
