/**
 * Backends: what a gateway name resolves to. A target is either a local agent with a balancer
 * over its replicas of the wanted protocol, or a typed Invalid backend that knows the problem
 * to answer with (404 unknown, 409 not active, 503 offline), so a bad reference fails its own
 * requests and nothing else.
 */
import type { IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import type { AgentRow } from '../../ans/index.js';
import { Balancer, type HealthOptions, type Replica, type Strategy } from './balancer.js';
import { GatewayErrors } from './errors.js';
import type { AnsError } from '../errors/index.js';
import type { VerifiedCaller } from './caller.js';

export type Protocol = 'a2a' | 'mcp' | 'http';

export interface AgentBackend {
  kind: 'agent';
  agent: AgentRow;
  protocol: Protocol;
  balancer: Balancer;
  /** Every endpoint URL of the agent (for URL rewriting). */
  endpoints: readonly string[];
  /** Skill ids that need a human's approval. */
  approvalSkills: ReadonlySet<string>;
  /** Every skill needs approval: every call is held. */
  allHeld: boolean;
}

export interface InvalidBackend {
  kind: 'invalid';
  error: AnsError;
}

/**
 * A target in another domain (federation): one replica, the next-hop gateway's
 * `/gw/<fqdn>/`, on the dispatcher federation keeps for that peer. Human approval and the
 * target's policy are the owning domain's; this gateway applies its policy to its own callers.
 */
export interface RemoteBackend {
  kind: 'remote';
  /** The agent's id at its origin. */
  id: string;
  fqdn: string;
  /** The agent's zone (normalised). */
  domain: string;
  protocol: Protocol | undefined;
  balancer: Balancer;
  endpoints: readonly string[];
  dispatcher: Dispatcher;
  approvalSkills: ReadonlySet<string>;
  allHeld: false;
}

export type Backend = AgentBackend | RemoteBackend | InvalidBackend;

/**
 * The hook federation plugs into the gateway (wired in src/app.ts): next-hop targets for names
 * in its forwarding table, callers relayed by a peer gateway, and the headers a call carries to
 * the next hop (or `ANS-Via` when a relayed call is delivered to a local agent).
 */
export interface RemoteTargets {
  backend(fqdn: string, protocol: Protocol | undefined): RemoteBackend | InvalidBackend | undefined;
  /** Whether the request carries a peer gateway's relay credential. */
  relayed(req: IncomingMessage): boolean;
  /** The original caller of a relayed request (throws typed errors). */
  caller(req: IncomingMessage, fqdn: string): Promise<VerifiedCaller>;
  /** Whether this caller came through a peer gateway. */
  isRelayedCaller(c: VerifiedCaller): boolean;
  /** Extra upstream headers (flat name/value list) for a call to `b` by `c`. */
  headers(c: VerifiedCaller, b: AgentBackend | RemoteBackend): Promise<string[]>;
}

/** What the backend resolver needs from the registry's projections. */
export interface Directory {
  byName(fqdn: string): AgentRow | undefined;
  reachable(id: string): boolean;
}

/** The status of a non-active agent by name (a store read, only on the error path). */
export type StatusLookup = (fqdn: string) => Promise<string | undefined>;

interface Compiled {
  balancers: Map<Protocol, Balancer>;
  /** The answer per protocol, made once (the hot path allocates nothing here). */
  backends: Map<Protocol, AgentBackend>;
  endpoints: string[];
  approvalSkills: Set<string>;
  allHeld: boolean;
  strategy: Strategy;
}

export class Backends {
  // Keyed by the row object: the directory replaces the row on every change, which drops the
  // balancers (and their health state) of an agent whose endpoints may have changed.
  private compiled = new WeakMap<AgentRow, Compiled>();
  private readonly negative = new Map<string, { at: number; error: AnsError }>();

  constructor(
    private readonly directory: Directory,
    private readonly statusOf: StatusLookup,
    private readonly strategyFor: (fqdn: string) => Strategy,
    private readonly health: () => HealthOptions,
    private readonly onEject: (agent: AgentRow, r: Replica) => void,
  ) {}

  /** Settings changed: rebuild balancers lazily. */
  invalidate(): void {
    this.compiled = new WeakMap();
    this.negative.clear();
  }

  /** Synchronous for active names; undefined means "ask `resolveMissing`". */
  resolveActive(fqdn: string, protocol: Protocol | undefined): Backend | undefined {
    const a = this.directory.byName(fqdn);
    if (!a) return undefined;
    if (!this.directory.reachable(a.id)) return { kind: 'invalid', error: GatewayErrors.offline(fqdn) };
    const c = this.compile(a);
    const proto = protocol ?? (a.card.endpoints[0]!.protocol as Protocol);
    let b = c.backends.get(proto);
    if (b) return b;
    const balancer = c.balancers.get(proto);
    if (!balancer) return { kind: 'invalid', error: GatewayErrors.noEndpoint(fqdn, proto) };
    b = {
      kind: 'agent',
      agent: a,
      protocol: proto,
      balancer,
      endpoints: c.endpoints,
      approvalSkills: c.approvalSkills,
      allHeld: c.allHeld,
    };
    c.backends.set(proto, b);
    return b;
  }

  /** A name that is not active here: 409 with its status, or 404. Cached for a second. */
  async resolveMissing(fqdn: string, nowMs: number): Promise<InvalidBackend> {
    const hit = this.negative.get(fqdn);
    if (hit && nowMs - hit.at < 1000) return { kind: 'invalid', error: hit.error };
    const status = await this.statusOf(fqdn);
    const error = status ? GatewayErrors.notActive(fqdn, status) : GatewayErrors.unknownAgent(fqdn);
    if (this.negative.size > 10_000) this.negative.clear();
    this.negative.set(fqdn, { at: nowMs, error });
    return { kind: 'invalid', error };
  }

  /** Forget cached refusals (an agent changed; its new row recompiles by itself). */
  forgetRefusals(): void {
    this.negative.clear();
  }

  private compile(a: AgentRow): Compiled {
    let c = this.compiled.get(a);
    const strategy = this.strategyFor(a.fqdn);
    if (c && c.strategy === strategy) return c;
    const balancers = new Map<Protocol, Balancer>();
    for (const p of ['a2a', 'mcp', 'http'] as const) {
      const eps = a.card.endpoints.filter((e) => e.protocol === p);
      if (eps.length) balancers.set(p, new Balancer(eps, strategy, this.health(), (r) => this.onEject(a, r)));
    }
    const approvalSkills = new Set(a.card.skills.filter((s) => s.requireHumanApproval).map((s) => s.id));
    c = {
      balancers,
      backends: new Map(),
      endpoints: a.card.endpoints.map((e) => e.url),
      approvalSkills,
      allHeld: approvalSkills.size > 0 && approvalSkills.size === a.card.skills.length,
      strategy,
    };
    this.compiled.set(a, c);
    return c;
  }
}

/** The store read behind `StatusLookup`: the newest registration of a name that still holds it. */
export function statusLookup(db: { query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> }): StatusLookup {
  return async (fqdn) => {
    const rows = await db.query<{ status: string }>(
      `SELECT status FROM agents WHERE fqdn = $1 AND status NOT IN ('rejected', 'deregistered') ORDER BY updated_at DESC LIMIT 1`,
      [fqdn],
    );
    return rows[0]?.status;
  };
}
