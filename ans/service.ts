import { randomUUID } from 'node:crypto';
import type { IssueRequest, RevocationReason } from '../ca/index.js';
import type { Db, Queryable, Statement } from '../src/store/index.js';
import { recordChange } from '../src/events/index.js';
import type { AgentCard } from './card.js';
import { AnsErrors } from './errors.js';
import { AuditLog } from './audit.js';
import { livenessOf, transition, type AgentStatus, type LifecycleAction, type Liveness } from './lifecycle.js';
import { actorName, type Principal } from './principal.js';
import * as repo from './repo.js';
import type { AgentRow } from './repo.js';
import { compareSemver, incompatibilities, parseSemver } from './version.js';

/** What the registry needs from the CA; `ca/` implements it and the composition root passes it in. */
export interface CertificateIssuer {
  checkCsr(csrPem: string, fqdn: string): Promise<void>;
  /** Signs; `insert` stores the certificate and goes into the same statement as the agent's writes. */
  prepare(req: IssueRequest): { certificate: IssuedCertificate; insert: Statement };
  /** The CA's client error for a store error raised by a prepared insert (a barred key), if it is one. */
  refusal(e: unknown): Error | undefined;
  /** A prepared certificate was committed. */
  noteIssued(): void;
  revokeSubject(subjectId: string, reason: RevocationReason, tx?: Queryable): Promise<string[]>;
  current(subjectId: string): Promise<CertificateInfo | null>;
}
/** The RFC 5280 reason names, one list shared with the CA. */
export type { RevocationReason };
export interface IssuedCertificate {
  serial: string;
  pem: string;
  chainPem: string;
  notBefore: Date;
  notAfter: Date;
  spkiSha256: string;
}
export interface CertificateInfo extends IssuedCertificate {
  status: 'good' | 'revoked' | 'expired';
  revokedAt?: Date;
  reason?: RevocationReason;
}

/** Screens free text (card fields) before it is stored; the semantic layer provides it. */
export type TextScreen = (text: string) => { ok: true; text: string } | { ok: false; reason: string };

export interface RegistryOptions {
  db: Db;
  zone: string;
  ca: CertificateIssuer;
  heartbeatIntervalMs: number;
  screen?: TextScreen;
  now?: () => Date;
  /** Called after each commit that recorded a change, so the change feed delivers it at once. */
  onChange?: (seq: number) => void;
  /** Called after a heartbeat commits (heartbeats are not changes; see `heartbeat`). */
  onHeartbeat?: (id: string, at: Date) => void;
}

export interface AgentView {
  id: string;
  fqdn: string;
  label: string;
  zone: string;
  status: AgentStatus;
  liveness: Liveness;
  version: string;
  card: AgentCard;
  createdAt: string;
  updatedAt: string;
  lastHeartbeat: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Labels ANS itself uses in the zone: the name server and the federation gateway identity. */
export const RESERVED_LABELS: ReadonlySet<string> = new Set(['ns1', 'amsp-gateway']);

/** Zone in API form: lower case, no trailing dot. */
export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * The registry: agent records and their lifecycle. Every state change commits the new state,
 * its audit entry and a change-feed row in one transaction.
 */
export class Registry {
  readonly zone: string;
  readonly db: Db;
  private readonly ca: CertificateIssuer;
  private readonly now: () => Date;
  readonly audit: AuditLog;
  private readonly heartbeatIntervalMs: number;
  private readonly screen: TextScreen | undefined;
  private readonly onChange: (seq: number) => void;
  private readonly onHeartbeat: (id: string, at: Date) => void;

  constructor(opts: RegistryOptions) {
    this.db = opts.db;
    this.zone = normaliseName(opts.zone);
    this.ca = opts.ca;
    this.now = opts.now ?? (() => new Date());
    this.audit = new AuditLog(this.db, this.now);
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs;
    this.screen = opts.screen;
    this.onChange = opts.onChange ?? (() => undefined);
    this.onHeartbeat = opts.onHeartbeat ?? (() => undefined);
  }

  fqdnOf(label: string): string {
    return `${label.toLowerCase()}.${this.zone}`;
  }

  view(a: AgentRow): AgentView {
    return {
      id: a.id,
      fqdn: a.fqdn,
      label: a.label,
      zone: a.zone,
      status: a.status,
      liveness: livenessOf(a.lastHeartbeat, this.now(), this.heartbeatIntervalMs),
      version: a.version,
      card: a.card,
      createdAt: a.createdAt.toISOString(),
      updatedAt: a.updatedAt.toISOString(),
      lastHeartbeat: a.lastHeartbeat?.toISOString() ?? null,
    };
  }

  /** Card checks the JSON schema cannot express: free text screening. */
  private checkCard(card: AgentCard): AgentCard {
    if (!this.screen) return card;
    const texts: [string, string][] = [
      ['name', card.name],
      ['description', card.description],
    ];
    card.skills.forEach((s, i) => {
      texts.push([`skills[${i}].name`, s.name], [`skills[${i}].description`, s.description]);
      (s.tags ?? []).forEach((t, j) => texts.push([`skills[${i}].tags[${j}]`, t]));
      (s.examples ?? []).forEach((t, j) => texts.push([`skills[${i}].examples[${j}]`, t]));
    });
    for (const [field, text] of texts) {
      const r = this.screen(text);
      if (!r.ok) throw AnsErrors.unsafeText(field, r.reason);
    }
    const ids = new Set<string>();
    for (const s of card.skills) {
      if (ids.has(s.id)) throw AnsErrors.invalidCard(`skill id '${s.id}' appears twice`);
      ids.add(s.id);
    }
    return card;
  }

  private async commit<T>(fn: (tx: Queryable) => Promise<{ result: T; seq?: number; issued?: boolean }>): Promise<T> {
    let out: { result: T; seq?: number; issued?: boolean };
    try {
      out = await this.db.transaction(fn);
    } catch (e) {
      throw this.ca.refusal(e) ?? e;
    }
    if (out.issued) this.ca.noteIssued();
    if (out.seq !== undefined) this.onChange(out.seq);
    return out.result;
  }

  /**
   * The last step of every registry change: the agent's writes, its audit entry and its change
   * row in one statement. Returns the change's seq.
   */
  private record(
    tx: Queryable,
    id: string,
    by: Principal,
    action: string,
    detail: Record<string, unknown>,
    writes: Statement[],
  ): Promise<number> {
    const entry = this.audit.entryStatement({ actor: actorName(by), action, subject: id, detail });
    return recordChange(tx, 'agent', id, 'agent.changed', entry ? [...writes, entry] : writes);
  }

  async register(
    card: AgentCard,
    csrPem: string,
    by: Principal,
  ): Promise<{ id: string; status: 'pending'; fqdn: string }> {
    this.checkCard(card);
    if (RESERVED_LABELS.has(card.label.toLowerCase())) throw AnsErrors.labelReserved(card.label.toLowerCase());
    const fqdn = this.fqdnOf(card.label);
    await this.ca.checkCsr(csrPem, fqdn);
    const id = randomUUID();
    const now = this.now();
    // One statement, so no explicit transaction: the agent, its first version, the audit entry
    // and the change row commit together.
    let seq: number;
    try {
      seq = await this.record(
        this.db,
        id,
        by,
        'agent.register',
        { fqdn, version: card.version },
        repo.insertAgentStatements({
          id,
          label: card.label.toLowerCase(),
          zone: this.zone,
          fqdn,
          version: card.version,
          card,
          csr: csrPem,
          now,
        }),
      );
    } catch (e) {
      // The partial unique index on live FQDNs decides, also between concurrent registrations.
      if ((e as { code?: string }).code === '23505') throw AnsErrors.labelTaken(fqdn);
      throw e;
    }
    this.onChange(seq);
    return { id, status: 'pending' as const, fqdn };
  }

  private async locked(tx: Queryable, id: string): Promise<AgentRow> {
    const a = await repo.getAgent(tx, id, true);
    if (!a) throw AnsErrors.notFound(id);
    return a;
  }

  /** Agents may act only on themselves; admins on anyone. Registry changes spend the JWT id. */
  private async authorise(tx: Queryable, by: Principal, id: string, allowAgent: boolean): Promise<void> {
    if (by.kind === 'admin') return;
    if (by.kind === 'agent' && allowAgent) {
      if (by.agentId !== id) throw AnsErrors.forbidden('an agent may only act on its own record');
      if (!(await repo.consumeJti(tx, by.jti, by.exp))) throw AnsErrors.replayed();
      return;
    }
    throw AnsErrors.forbidden('this action needs an admin token');
  }

  /** The one shape of an agent certificate request: SAN = the FQDN and `ans://v<version>.<fqdn>`. */
  private issueFor(
    a: AgentRow,
    version: string,
    csrPem: string,
  ): { certificate: IssuedCertificate; insert: Statement } {
    return this.ca.prepare({ subjectId: a.id, fqdn: a.fqdn, uri: `ans://v${version}.${a.fqdn}`, csrPem });
  }

  private move(a: AgentRow, action: LifecycleAction): AgentStatus {
    const to = transition(a.status, action);
    if (!to) throw AnsErrors.illegalTransition(a.status, action);
    return to;
  }

  async approve(id: string, by: Principal): Promise<{ agent: AgentView; certificate: IssuedCertificate }> {
    return this.commit(async (tx) => {
      await this.authorise(tx, by, id, false);
      const a = await this.locked(tx, id);
      const to = this.move(a, 'approve');
      const { certificate: cert, insert } = this.issueFor(a, a.version, a.csr);
      const now = this.now();
      const seq = await this.record(tx, id, by, 'agent.approve', { serial: cert.serial }, [
        insert,
        repo.updateAgentStatement(id, { status: to, cert, now }),
      ]);
      return {
        result: { agent: this.view({ ...a, status: to, updatedAt: now }), certificate: cert },
        seq,
        issued: true,
      };
    });
  }

  /** reject, suspend, resume, deregister: transitions with no certificate work besides revocation. */
  async act(
    id: string,
    action: 'reject' | 'suspend' | 'resume' | 'deregister',
    by: Principal,
    reason?: string,
  ): Promise<AgentView> {
    return this.commit(async (tx) => {
      await this.authorise(tx, by, id, action === 'deregister');
      const a = await this.locked(tx, id);
      const to = this.move(a, action);
      // A deregistered agent's certificate must stop working too.
      const revoked =
        action === 'deregister' && a.status !== 'pending'
          ? await this.ca.revokeSubject(id, 'cessationOfOperation', tx)
          : [];
      const now = this.now();
      const seq = await this.record(
        tx,
        id,
        by,
        `agent.${action}`,
        { from: a.status, to, ...(reason ? { reason } : {}), ...(revoked.length ? { revoked } : {}) },
        [repo.updateAgentStatement(id, { status: to, now })],
      );
      return { result: this.view({ ...a, status: to, updatedAt: now }), seq };
    });
  }

  async revoke(id: string, reason: RevocationReason, by: Principal): Promise<{ agent: AgentView; revoked: string[] }> {
    return this.commit(async (tx) => {
      await this.authorise(tx, by, id, true);
      const a = await this.locked(tx, id);
      const to = this.move(a, 'revoke');
      const revoked = await this.ca.revokeSubject(id, reason, tx);
      const now = this.now();
      const seq = await this.record(tx, id, by, 'agent.revoke', { reason, revoked }, [
        repo.updateAgentStatement(id, { status: to, now }),
      ]);
      return { result: { agent: this.view({ ...a, status: to, updatedAt: now }), revoked }, seq };
    });
  }

  /**
   * A card update. Same major version: in place, and the version must grow. An incompatible
   * change needs a new major version, which also gets a new certificate (the URI SAN carries the
   * version), from `csr` when given (a new key) or else from the CSR on file (same key).
   */
  async update(
    id: string,
    card: AgentCard,
    csrPem: string | undefined,
    by: Principal,
  ): Promise<{ agent: AgentView; certificate?: IssuedCertificate }> {
    this.checkCard(card);
    const pre = await repo.getAgent(this.db, id);
    if (!pre) throw AnsErrors.notFound(id);
    if (csrPem !== undefined) await this.ca.checkCsr(csrPem, pre.fqdn);
    return this.commit(async (tx) => {
      await this.authorise(tx, by, id, true);
      const a = await this.locked(tx, id);
      if (a.status !== 'active') throw AnsErrors.notActive(a.status);
      if (card.label.toLowerCase() !== a.label) throw AnsErrors.labelChange();
      if (compareSemver(card.version, a.version) <= 0) throw AnsErrors.versionNotNewer(card.version, a.version);
      const major = parseSemver(card.version).major !== parseSemver(a.version).major;
      const broken = incompatibilities(a.card, card);
      if (broken.length > 0 && !major) throw AnsErrors.incompatible(broken.join('; '));
      const now = this.now();
      const issued = major || csrPem !== undefined ? this.issueFor(a, card.version, csrPem ?? a.csr) : undefined;
      const certificate = issued?.certificate;
      const seq = await this.record(
        tx,
        id,
        by,
        'agent.update',
        { from: a.version, to: card.version, ...(certificate ? { serial: certificate.serial } : {}) },
        [
          ...(issued ? [issued.insert] : []),
          repo.insertVersionStatement(id, card.version, card, now),
          repo.updateAgentStatement(id, {
            version: card.version,
            card,
            ...(csrPem ? { csr: csrPem } : {}),
            ...(certificate ? { cert: certificate } : {}),
            now,
          }),
        ],
      );
      const agent = this.view({ ...a, card, version: card.version, updatedAt: now });
      return { result: certificate ? { agent, certificate } : { agent }, seq, issued: issued !== undefined };
    });
  }

  /** A new certificate for an active agent, from a new CSR (same or new key). */
  async renew(id: string, csrPem: string, by: Principal): Promise<IssuedCertificate> {
    const pre = await repo.getAgent(this.db, id);
    if (!pre) throw AnsErrors.notFound(id);
    await this.ca.checkCsr(csrPem, pre.fqdn);
    return this.commit(async (tx) => {
      await this.authorise(tx, by, id, true);
      const a = await this.locked(tx, id);
      if (a.status !== 'active') throw AnsErrors.notActive(a.status);
      const { certificate, insert } = this.issueFor(a, a.version, csrPem);
      const seq = await this.record(tx, id, by, 'agent.renew', { serial: certificate.serial }, [
        insert,
        repo.updateAgentStatement(id, { csr: csrPem, cert: certificate, now: this.now() }),
      ]);
      return { result: certificate, seq, issued: true };
    });
  }

  /** Heartbeats only touch liveness: no audit entry and no change row (they are frequent). */
  async heartbeat(id: string, by: Principal): Promise<AgentView> {
    const now = this.now();
    const view = await this.commit(async (tx) => {
      await this.authorise(tx, by, id, true);
      const a = await this.locked(tx, id);
      if (a.status !== 'active') throw AnsErrors.notActive(a.status);
      await repo.setHeartbeat(tx, id, now);
      return { result: this.view({ ...a, lastHeartbeat: now }) };
    });
    this.onHeartbeat(id, now);
    return view;
  }

  async get(id: string): Promise<AgentRow> {
    const a = await repo.getAgent(this.db, id);
    if (!a) throw AnsErrors.notFound(id);
    return a;
  }

  async list(opts: { statuses?: readonly AgentStatus[]; limit: number; cursor?: string }): Promise<Page<AgentView>> {
    let afterId: string | undefined;
    if (opts.cursor) {
      afterId = Buffer.from(opts.cursor, 'base64url').toString('utf8');
      if (!/^[0-9a-f-]{36}$/.test(afterId)) throw AnsErrors.badCursor();
    }
    const rows = await repo.listAgents(this.db, { statuses: opts.statuses, afterId, limit: opts.limit + 1 });
    const items = rows.slice(0, opts.limit).map((r) => this.view(r));
    const last = items.at(-1);
    return { items, nextCursor: rows.length > opts.limit && last ? Buffer.from(last.id).toString('base64url') : null };
  }

  versions(id: string) {
    return repo.versions(this.db, id);
  }

  async certificate(id: string): Promise<CertificateInfo | null> {
    await this.get(id);
    return this.ca.current(id);
  }

  countByStatus(): Promise<Record<string, number>> {
    return repo.countByStatus(this.db);
  }

  heartbeatsSince(since: Date) {
    return repo.heartbeatsSince(this.db, since);
  }

  purgeExpiredJti(): Promise<void> {
    return repo.purgeExpiredJti(this.db, this.now());
  }
}
