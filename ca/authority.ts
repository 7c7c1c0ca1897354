/**
 * The authority: hierarchy bootstrap, CSR checks, issuance, status, revocation, CRL, OCSP and
 * client-certificate verification. No HTTP here (routes.ts is a thin layer over this).
 *
 * Caches and freshness: certificate status, CRLs and OCSP answers are cached in memory. Every
 * revocation bumps `ca_state.revocations` in the same transaction, and any cached answer is
 * re-validated against that counter at most `recheckMs` (250 ms) after the last look, so a
 * revocation made by any process on the same store shows in CRL/OCSP/verifyClient within a
 * second even if nobody calls `invalidate()`. `invalidate()` (called from the change feed)
 * makes it immediate.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { recordChange } from '../src/events/index.js';
import type { Db, Queryable, Statement } from '../src/store/index.js';
import { assembleCrl, encodeEntry } from './crl.js';
import { TAG, enc, tlv } from './der.js';
import { CaErrors } from './errors.js';
import { issuingCertificate, rootCertificate } from './hierarchy.js';
import { decryptKey, encryptKey, generateCaKey, publicSpkiDer } from './keys.js';
import {
  buildOcspResponse,
  ocspError,
  parseOcspRequest,
  type CertState,
  type OcspAnswer,
  type OcspIssuer,
} from './ocsp.js';
import { checkCsrPure, normalizeName, type ParsedCsr } from './policy.js';
import * as repo from './repo.js';
import {
  isRevocationReason,
  type CaOptions,
  type CertificateStatus,
  type IssuedCertificate,
  type RevocationReason,
  type VerifiedClient,
} from './types.js';
import {
  OID,
  SERIAL_RE,
  certFromDer,
  cnName,
  ext,
  keyIdentifier,
  keyUsage,
  randomSerial,
  serialToInteger,
  sha1,
  sha256,
  signBytes,
  signingKey,
  toPem,
  verifyBytes,
  wholeSeconds,
  x509Time,
  type SigningKey,
} from './x509.js';

const DAY = 86_400_000;
/** Leaves are backdated a little for clients with slow clocks. */
const BACKDATE_MS = 60_000;
/** A cached CRL is rebuilt at least this often even with no change; nextUpdate is further out. */
const CRL_REBUILD_MS = 3600_000;
const CRL_VALIDITY_MS = DAY;
/** CRL entries encoded and stored per statement. */
const CRL_FILL_BATCH = 20_000;
/** OCSP answers are valid for an hour; nonce-less ones are cached for a minute. */
const OCSP_VALIDITY_MS = 3600_000;
const OCSP_CACHE_MS = 60_000;
const MAX_STATUS_CACHE = 100_000;
const MAX_LEAF_CACHE = 20_000;
/** Certificates per group insert. */
const MAX_INSERT_GROUP = 256;
/** More revocations than this since the last look: drop every cached status instead. */
const MAX_TARGETED_INVALIDATION = 1000;

interface Issuer {
  id: string;
  generation: number;
  der: Uint8Array;
  pem: string;
  cert: pkijs.Certificate;
  ski: Uint8Array;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  signer: SigningKey | undefined;
  ocsp: OcspIssuer;
  /** Extensions every leaf of this issuer carries, built once. */
  leafExts: { aki: pkijs.Extension; crlDp: pkijs.Extension; aia: pkijs.Extension };
  /** leafExts and the other constant TBS parts, DER-encoded on first use. */
  leafTpl?: LeafTemplate;
}

/** What a certificate is for: the subject it belongs to, its DNS name and its ANS URI. */
export interface IssueRequest {
  subjectId: string;
  fqdn: string;
  uri: string;
  csrPem: string;
}

interface Status {
  subjectId: string;
  fqdn: string;
  issuerId: string;
  notBefore: Date;
  notAfter: Date;
  revokedAt: Date | null;
  reason: RevocationReason | null;
}

interface Leaf {
  serial: string;
  issuerId: string;
  notBefore: Date;
  publicKey: KeyObject;
  alg: VerifiedClient['alg'];
}

/** Counters for the metrics endpoint (the composition root exports them to Prometheus). */
export interface CaStats {
  issued: number;
  revoked: number;
  ocspResponses: number;
  crlBuilds: number;
  lastCrlBuildMs: number;
}

// Constant leaf extensions.
const BC_LEAF = ext(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: false }));
const KU_SIG = ext(OID.keyUsage, true, keyUsage(['digitalSignature']));
const KU_RSA = ext(OID.keyUsage, true, keyUsage(['digitalSignature', 'keyEncipherment']));
const EKU = ext(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth, OID.clientAuth] }));

function uriName(value: string): pkijs.GeneralName {
  return new pkijs.GeneralName({ type: 6, value });
}

function octets(b: Uint8Array): asn1js.OctetString {
  return new asn1js.OctetString({ valueHex: b.slice().buffer });
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function algOf(key: KeyObject): VerifiedClient['alg'] | undefined {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const c = key.asymmetricKeyDetails?.namedCurve;
      return c === 'prime256v1' ? 'ES256' : c === 'secp384r1' ? 'ES384' : undefined;
    }
    case 'ed25519':
      return 'EdDSA';
    case 'rsa':
      return 'RS256';
    default:
      return undefined;
  }
}

export class CertificateAuthority {
  private readonly db: Db;
  private readonly zone: string;
  private readonly publicUrl: string;
  private readonly passphrase: string | undefined;
  private readonly validityDays: number;
  private readonly now: () => Date;
  private readonly recheckMs: number;

  private root: { der: Uint8Array; pem: string; key: KeyObject | undefined } | undefined;
  /** Ascending generation; the last one issues. */
  private issuers: Issuer[] = [];

  private version = { revocations: -1, generation: 0 };
  /**
   * SPKI hashes of keys revoked for keyCompromise, re-read with the revocation counter: the
   * registration-time check costs no query. Issuance itself is barred by the store (005).
   */
  private compromised = new Set<string>();
  private checkedAt = 0;
  private checking: Promise<void> | undefined;
  /** Bumped on every cache clear; a load that began under an older value is not cached. */
  private cacheGen = 0;
  private readonly statusCache = new Map<string, Status>();
  private readonly leafCache = new Map<string, Leaf>();
  private readonly crlCache = new Map<string, { gen: number; builtAt: number; der: Promise<Uint8Array> }>();
  /** Pre-produced nonce-less answers by request bytes; valid while `status` is the cached one. */
  private readonly ocspCache = new Map<
    string,
    { gen: number; at: number; der: Uint8Array; serial: string; status: Status }
  >();
  /** Serials whose nonce-less OCSP answer is in the store, with the state stored. */
  private readonly ocspPersisted = new Map<string, { revoked: boolean; at: number }>();

  private readonly insertQueue: {
    row: repo.NewCert;
    resolve: (r: repo.InsertResult) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private inserting = false;

  readonly stats: CaStats = { issued: 0, revoked: 0, ocspResponses: 0, crlBuilds: 0, lastCrlBuildMs: 0 };

  private constructor(opts: CaOptions) {
    this.db = opts.db;
    this.zone = normalizeName(opts.zone);
    this.publicUrl = opts.publicUrl.replace(/\/+$/, '');
    this.passphrase = opts.passphrase;
    this.validityDays = opts.validityDays ?? 30;
    this.now = opts.now ?? (() => new Date());
    this.recheckMs = opts.recheckMs ?? 250;
  }

  /**
   * Loads the CA from the store; the first process (with a passphrase) creates the root and the
   * first issuing intermediate under an advisory lock. Without a passphrase an existing CA is
   * served (chain, stored CRL/OCSP) but nothing is signed.
   */
  static async open(opts: CaOptions): Promise<CertificateAuthority> {
    const days = opts.validityDays ?? 30;
    if (!Number.isInteger(days) || days < 1 || days > 397)
      throw CaErrors.badConfig(`validityDays ${days} is not 1..397`);
    const zone = normalizeName(opts.zone);
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(zone)) throw CaErrors.badConfig(`zone '${opts.zone}' is not a DNS name`);
    try {
      const u = new URL(opts.publicUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      throw CaErrors.badConfig(`publicUrl '${opts.publicUrl}' is not an http(s) URL`);
    }
    if (opts.passphrase !== undefined && opts.passphrase.length === 0)
      throw CaErrors.badConfig('the CA passphrase is empty');
    const ca = new CertificateAuthority(opts);
    let rows = await repo.loadKeys(opts.db);
    if (!rows.some((r) => r.role === 'root') && opts.passphrase !== undefined) {
      rows = await opts.db.transaction(async (tx) => {
        await repo.lockCa(tx);
        const again = await repo.loadKeys(tx);
        if (again.some((r) => r.role === 'root')) return again;
        await ca.createHierarchy(tx, opts.passphrase!);
        return repo.loadKeys(tx);
      });
    }
    ca.load(rows);
    const cur = ca.currentIssuer();
    if (cur && ca.canSign() && cur.notAfter.getTime() <= ca.now().getTime()) await ca.rotate();
    ca.version = await repo.caVersion(opts.db);
    ca.compromised = new Set(await repo.compromisedKeys(opts.db));
    ca.checkedAt = Date.now();
    return ca;
  }

  // ------------------------------------------------------------------ hierarchy

  private async createHierarchy(tx: Queryable, passphrase: string): Promise<void> {
    const now = this.now();
    const rootKey = generateCaKey('P-384');
    const rootDer = rootCertificate(rootKey, this.zone, now);
    await repo.insertKey(tx, {
      id: 'root-1',
      role: 'root',
      generation: 1,
      keyPem: encryptKey(rootKey, passphrase),
      spkiDer: publicSpkiDer(rootKey),
      certDer: rootDer,
      notAfter: certFromDer(rootDer).notAfter.value,
    });
    await this.insertIssuing(tx, 1, rootDer, rootKey, passphrase);
  }

  private async insertIssuing(
    tx: Queryable,
    generation: number,
    rootDer: Uint8Array,
    rootKey: KeyObject,
    passphrase: string,
  ): Promise<void> {
    const key = generateCaKey('P-256');
    const der = issuingCertificate({ key, generation, zone: this.zone, rootDer, rootKey, now: this.now() });
    await repo.insertKey(tx, {
      id: `issuing-${generation}`,
      role: 'issuing',
      generation,
      keyPem: encryptKey(key, passphrase),
      spkiDer: publicSpkiDer(key),
      certDer: der,
      notAfter: certFromDer(der).notAfter.value,
    });
  }

  private load(rows: readonly repo.KeyRow[]): void {
    const rootRow = rows.find((r) => r.role === 'root' && r.certDer);
    if (!rootRow) {
      this.root = undefined;
      this.issuers = [];
      return;
    }
    if (!this.root) {
      this.root = {
        der: rootRow.certDer!,
        pem: toPem('CERTIFICATE', rootRow.certDer!),
        key: this.passphrase === undefined ? undefined : decryptKey(rootRow.keyPem, this.passphrase, 'root CA'),
      };
    }
    const known = new Map(this.issuers.map((i) => [i.id, i]));
    this.issuers = rows
      .filter((r) => r.role === 'issuing' && r.certDer)
      .sort((a, b) => a.generation - b.generation)
      .map((r) => known.get(r.id) ?? this.issuerFrom(r));
  }

  private issuerFrom(r: repo.KeyRow): Issuer {
    const der = r.certDer!;
    const cert = certFromDer(der);
    const ski = keyIdentifier(cert.subjectPublicKeyInfo);
    const nameDer = new Uint8Array(cert.subject.toSchema().toBER(false));
    const keyBits = cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
    const signer =
      this.passphrase === undefined
        ? undefined
        : signingKey(decryptKey(r.keyPem, this.passphrase, `issuing CA ${r.id}`));
    return {
      id: r.id,
      generation: r.generation,
      der,
      pem: toPem('CERTIFICATE', der),
      cert,
      ski,
      publicKey: createPublicKey({ key: Buffer.from(r.spkiDer), format: 'der', type: 'spki' }),
      notBefore: cert.notBefore.value,
      notAfter: cert.notAfter.value,
      signer,
      ocsp: {
        id: r.id,
        nameHash: { [OID.sha1]: sha1(nameDer), [OID.sha256]: sha256(nameDer) },
        keyHash: { [OID.sha1]: sha1(keyBits), [OID.sha256]: sha256(keyBits) },
        responderKeyHash: sha1(keyBits),
        signer,
      },
      leafExts: {
        aki: ext(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: octets(ski) })),
        crlDp: ext(
          OID.crlDistributionPoints,
          false,
          new pkijs.CRLDistributionPoints({
            distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: [uriName(this.crlUrl(r.id))] })],
          }),
        ),
        aia: ext(
          OID.authorityInfoAccess,
          false,
          new pkijs.InfoAccess({
            accessDescriptions: [
              new pkijs.AccessDescription({
                accessMethod: OID.ocspAccess,
                accessLocation: uriName(`${this.publicUrl}/v1/ca/ocsp`),
              }),
            ],
          }),
        ),
      },
    };
  }

  /** The CRL of one issuing CA; certificates point here (CRL DP). */
  crlUrl(issuerId: string): string {
    return `${this.publicUrl}/v1/ca/crl/${issuerId}`;
  }

  private currentIssuer(): Issuer | undefined {
    return this.issuers[this.issuers.length - 1];
  }

  private canSign(): boolean {
    return this.passphrase !== undefined && this.root !== undefined && this.currentIssuer()?.signer !== undefined;
  }

  /** Whether `issue` can succeed: a passphrase was given and the issuing CA is valid. */
  get canIssue(): boolean {
    const cur = this.currentIssuer();
    return this.canSign() && cur !== undefined && cur.notAfter.getTime() > this.now().getTime();
  }

  private signingIssuer(): Issuer & { signer: SigningKey } {
    if (this.root === undefined) throw CaErrors.notInitialized();
    if (this.passphrase === undefined) throw CaErrors.noPassphrase();
    const cur = this.currentIssuer();
    if (!cur?.signer || cur.notAfter.getTime() <= this.now().getTime()) throw CaErrors.noIssuer();
    return cur as Issuer & { signer: SigningKey };
  }

  /** Issuing CA first (newest first when rotated), root last. */
  chainPem(): string {
    if (!this.root) throw CaErrors.notInitialized();
    const now = this.now().getTime();
    const live = this.issuers.filter((i, n) => n === this.issuers.length - 1 || i.notAfter.getTime() > now).reverse();
    return live.map((i) => i.pem).join('') + this.root.pem;
  }

  rootPem(): string {
    if (!this.root) throw CaErrors.notInitialized();
    return this.root.pem;
  }

  /** Ids of the issuing CAs, oldest first (for `GET /v1/ca/crl/:issuer`). */
  issuerIds(): string[] {
    return this.issuers.map((i) => i.id);
  }

  private chainOf(issuer: Issuer): string {
    return issuer.pem + (this.root?.pem ?? '');
  }

  private issuerById(id: string): Issuer | undefined {
    return this.issuers.find((i) => i.id === id);
  }

  /** A new issuing intermediate; the old ones keep serving CRL/OCSP for their leaves. */
  async rotate(): Promise<void> {
    if (!this.root) throw CaErrors.notInitialized();
    if (this.passphrase === undefined || !this.root.key) throw CaErrors.noPassphrase();
    const passphrase = this.passphrase;
    const root = this.root;
    await this.db.transaction(async (tx) => {
      await repo.lockCa(tx);
      const rows = await repo.loadKeys(tx);
      const gen = Math.max(0, ...rows.filter((r) => r.role === 'issuing').map((r) => r.generation)) + 1;
      await this.insertIssuing(tx, gen, root.der, root.key!, passphrase);
      await recordChange(tx, 'ca', `issuing-${gen}`, 'ca.rotated');
    });
    this.load(await repo.loadKeys(this.db));
    this.clearCaches();
  }

  // ------------------------------------------------------------------ freshness

  private clearCaches(): void {
    this.cacheGen++;
    this.statusCache.clear();
    this.crlCache.clear();
    this.ocspCache.clear();
  }

  /**
   * Drops cached state for `serial` (or everything) and makes the next lookup re-check the store.
   * The composition root calls this for each change of entity 'certificate' or 'ca'.
   */
  invalidate(serial?: string): void {
    if (serial === undefined) {
      this.clearCaches();
    } else {
      this.cacheGen++;
      this.statusCache.delete(serial);
      this.crlCache.clear();
    }
    this.checkedAt = 0;
  }

  /** Re-reads the store's revocation counter and issuer generation when the last look is stale. */
  private async fresh(): Promise<void> {
    if (Date.now() - this.checkedAt < this.recheckMs) return;
    if (!this.checking) {
      this.checking = (async () => {
        const v = await repo.caVersion(this.db);
        this.checkedAt = Date.now();
        const old = this.version;
        if (v.revocations !== old.revocations) this.compromised = new Set(await repo.compromisedKeys(this.db));
        if (v.generation !== old.generation) {
          this.load(await repo.loadKeys(this.db));
          this.clearCaches();
        } else if (v.revocations !== old.revocations) {
          // Only the certificates revoked since our last look lose their cached status (and
          // with it their pre-produced OCSP answers); the CRL is rebuilt.
          const changed =
            old.revocations < 0 || v.revocations < old.revocations
              ? null
              : await repo.revokedSince(this.db, old.revocations, MAX_TARGETED_INVALIDATION);
          // Every bump through this code stamps at least one row; fewer rows than bumps means
          // someone revoked by other means (SQL by hand): drop everything to be safe.
          if (changed === null || changed.length < v.revocations - old.revocations) {
            this.clearCaches();
          } else {
            this.cacheGen++;
            for (const s of changed) this.statusCache.delete(s);
            this.crlCache.clear();
          }
        }
        this.version = v;
      })().finally(() => {
        this.checking = undefined;
      });
    }
    await this.checking;
  }

  private async statusOf(serial: string): Promise<Status | null> {
    await this.fresh();
    const hit = this.statusCache.get(serial);
    if (hit) return hit;
    const gen = this.cacheGen;
    const row = await repo.certBySerial(this.db, serial);
    if (!row) return null;
    const s: Status = {
      subjectId: row.subjectId,
      fqdn: row.fqdn,
      issuerId: row.issuerId,
      notBefore: row.notBefore,
      notAfter: row.notAfter,
      revokedAt: row.revokedAt,
      reason: row.reason,
    };
    if (gen === this.cacheGen) {
      if (this.statusCache.size >= MAX_STATUS_CACHE) this.statusCache.clear();
      this.statusCache.set(serial, s);
    }
    return s;
  }

  // ------------------------------------------------------------------ CSR and issuance

  private checkUri(uri: string): string {
    let u: URL;
    try {
      u = new URL(uri);
    } catch {
      throw CaErrors.uriInvalid(String(uri), this.zone);
    }
    const host = u.hostname.toLowerCase();
    if (!host.endsWith(`.${this.zone}`) || /[\s]/.test(uri)) throw CaErrors.uriInvalid(uri, this.zone);
    return uri;
  }

  /**
   * CSRs that passed every rule, by their exact text and name: registration checks a CSR and
   * approval signs it moments later, so the second parse and signature check are skipped. The
   * rules are pure functions of (PEM, name, zone), so a hit is the same verdict. Bounded.
   */
  private readonly checkedCsrs = new Map<string, ParsedCsr>();

  private policyCheck(csrPem: string, fqdn: string): ParsedCsr {
    const key = `${fqdn}\n${csrPem}`;
    const hit = this.checkedCsrs.get(key);
    if (hit) return hit;
    const parsed = checkCsrPure(csrPem, { fqdn, zone: this.zone });
    if (this.checkedCsrs.size >= 4096) this.checkedCsrs.delete(this.checkedCsrs.keys().next().value!);
    this.checkedCsrs.set(key, parsed);
    return parsed;
  }

  /** Every CSR rule (policy.ts) plus "this key was never revoked for keyCompromise". */
  async checkCsr(csrPem: string, fqdn: string): Promise<void> {
    const parsed = this.policyCheck(csrPem, normalizeName(fqdn));
    await this.fresh();
    if (this.compromised.has(parsed.spkiSha256)) throw CaErrors.keyCompromised();
  }

  /** Checks a request against the policy and signs it; stores nothing. */
  private sign(req: IssueRequest): { row: repo.NewCert; certificate: IssuedCertificate } {
    const issuer = this.signingIssuer();
    const fqdn = normalizeName(req.fqdn);
    const parsed = this.policyCheck(req.csrPem, fqdn);
    const uri = this.checkUri(req.uri);
    const now = this.now().getTime();
    const notBefore = wholeSeconds(new Date(now - BACKDATE_MS));
    const notAfter = wholeSeconds(new Date(Math.min(now + this.validityDays * DAY, issuer.notAfter.getTime())));
    const serial = randomSerial();
    const der = signLeaf(issuer, {
      serial,
      spkiDer: parsed.spkiDer,
      keyBits: parsed.keyBits,
      fqdn,
      uri,
      notBefore,
      notAfter,
      rsa: parsed.key.kind === 'RSA',
    });
    return {
      row: {
        serial,
        subjectId: req.subjectId,
        fqdn,
        issuerId: issuer.id,
        der,
        spkiSha256: parsed.spkiSha256,
        notBefore,
        notAfter,
      },
      certificate: {
        serial,
        pem: toPem('CERTIFICATE', der),
        chainPem: this.chainOf(issuer),
        notBefore,
        notAfter,
        spkiSha256: parsed.spkiSha256,
      },
    };
  }

  /** Signs and stores a certificate (through the group insert); the keyCompromise bar applies. */
  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    for (let attempt = 0; ; attempt++) {
      const { row, certificate } = this.sign(req);
      const inserted = await this.insertGrouped(row);
      if (inserted === 'compromised') throw CaErrors.keyCompromised();
      if (inserted === 'ok') {
        this.stats.issued++;
        if (this.statusCache.size >= MAX_STATUS_CACHE) this.statusCache.clear();
        const { subjectId, fqdn, issuerId, notBefore, notAfter } = row;
        this.statusCache.set(row.serial, {
          subjectId,
          fqdn,
          issuerId,
          notBefore,
          notAfter,
          revokedAt: null,
          reason: null,
        });
        return certificate;
      }
      // A 128-bit collision: practically never; the unique key guarantees no reuse anyway.
      if (attempt >= 3) throw new Error('could not allocate a fresh certificate serial');
    }
  }

  /**
   * Signs a certificate and returns it with the statement that stores it, for a caller that
   * commits it with its own writes in one statement (the registry: agent row, audit entry,
   * change). The store refuses a key revoked for keyCompromise: pass a failure of that
   * statement through `refusal`, and call `noteIssued` once it committed.
   */
  prepare(req: IssueRequest): { certificate: IssuedCertificate; insert: Statement } {
    const { row, certificate } = this.sign(req);
    return { certificate, insert: repo.insertCertStatement(row) };
  }

  /** The CA's client error for a store error raised by a `prepare`d insert, if it is one. */
  refusal(e: unknown): Error | undefined {
    return (e as { code?: unknown }).code === repo.KEY_COMPROMISED_SQLSTATE ? CaErrors.keyCompromised() : undefined;
  }

  noteIssued(): void {
    this.stats.issued++;
  }

  /**
   * Group insert: while one INSERT is running, the certificates that concurrent issue() calls
   * sign meanwhile queue up and go into the store together in the next statement (one round
   * trip and one commit for all of them). A lone caller is inserted at once, as before.
   */
  private async insertGrouped(row: repo.NewCert): Promise<repo.InsertResult> {
    return new Promise((resolve, reject) => {
      this.insertQueue.push({ row, resolve, reject });
      if (!this.inserting) void this.drainInserts();
    });
  }

  private async drainInserts(): Promise<void> {
    this.inserting = true;
    try {
      while (this.insertQueue.length > 0) {
        const batch = this.insertQueue.splice(0, MAX_INSERT_GROUP);
        try {
          const res =
            batch.length === 1
              ? [await repo.insertCert(this.db, batch[0]!.row)]
              : await repo.insertCerts(
                  this.db,
                  batch.map((b) => b.row),
                );
          batch.forEach((b, i) => b.resolve(res[i]!));
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.inserting = false;
    }
  }

  // ------------------------------------------------------------------ status and revocation

  private statusView(row: repo.CertRow): CertificateStatus {
    const issuer = this.issuerById(row.issuerId);
    const now = this.now().getTime();
    const status = row.revokedAt ? 'revoked' : row.notAfter.getTime() <= now ? 'expired' : 'good';
    return {
      serial: row.serial,
      subjectId: row.subjectId,
      pem: toPem('CERTIFICATE', row.der),
      chainPem: issuer ? this.chainOf(issuer) : '',
      notBefore: row.notBefore,
      notAfter: row.notAfter,
      spkiSha256: row.spkiSha256,
      status,
      ...(row.revokedAt && row.reason ? { revokedAt: row.revokedAt, reason: row.reason } : {}),
    };
  }

  /** The newest certificate of a subject, with its status. */
  async current(subjectId: string): Promise<CertificateStatus | null> {
    await this.fresh();
    const row = await repo.newestOfSubject(this.db, subjectId);
    return row ? this.statusView(row) : null;
  }

  /** One certificate by serial, with its status. */
  async bySerial(serial: string): Promise<CertificateStatus | null> {
    const s = serial.toLowerCase();
    if (!SERIAL_RE.test(s)) throw CaErrors.badSerial(serial);
    await this.fresh();
    const row = await repo.certBySerial(this.db, s);
    return row ? this.statusView(row) : null;
  }

  private async inTx<T>(tx: Queryable | undefined, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return tx ? fn(tx) : this.db.transaction(fn);
  }

  /** Revokes every unrevoked, unexpired certificate of the subject; returns their serials. */
  async revokeSubject(subjectId: string, reason: RevocationReason, tx?: Queryable): Promise<string[]> {
    if (!isRevocationReason(reason)) throw CaErrors.badReason(String(reason));
    const at = wholeSeconds(this.now());
    const serials = await this.inTx(tx, async (q) => {
      const s = await repo.revokeSubject(q, subjectId, at, reason);
      if (s.length > 0) await this.recordRevocations(q, s, at, reason);
      return s;
    });
    for (const s of serials) this.invalidate(s);
    this.stats.revoked += serials.length;
    return serials;
  }

  async revokeSerial(serial: string, reason: RevocationReason, tx?: Queryable): Promise<void> {
    if (!isRevocationReason(reason)) throw CaErrors.badReason(String(reason));
    const s = String(serial).toLowerCase();
    if (!SERIAL_RE.test(s)) throw CaErrors.badSerial(String(serial));
    const at = wholeSeconds(this.now());
    await this.inTx(tx, async (q) => {
      if (!(await repo.revokeSerial(q, s, at, reason))) {
        if (await repo.certBySerial(q, s)) throw CaErrors.alreadyRevoked(s);
        throw CaErrors.unknownSerial(s);
      }
      await this.recordRevocations(q, [s], at, reason);
    });
    this.invalidate(s);
    this.stats.revoked++;
  }

  private async recordRevocations(
    q: Queryable,
    serials: readonly string[],
    revokedAt: Date,
    reason: RevocationReason,
  ): Promise<void> {
    // The CRL entry is encoded once, here; CRL builds only concatenate stored entries.
    const entries = serials.map((serial) => Buffer.from(encodeEntry({ serial, revokedAt, reason })).toString('hex'));
    await repo.bumpRevocations(q, serials, entries);
    for (const s of serials) await recordChange(q, 'certificate', s, 'certificate.revoked');
  }

  // ------------------------------------------------------------------ client certificates

  /**
   * Checks an x5c chain [leaf, issuing CA] (base64 DER) against our own issuing CAs and
   * returns the leaf's status; the caller decides what a revoked/expired status means.
   */
  async verifyClient(x5c: readonly string[]): Promise<VerifiedClient> {
    if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > 2 || !x5c.every((s) => typeof s === 'string')) {
      throw CaErrors.chainInvalid('x5c must hold the certificate and its issuing CA, base64 DER');
    }
    await this.fresh();
    const key = x5c.join('.');
    let leaf = this.leafCache.get(key);
    if (!leaf) {
      leaf = this.parseLeaf(x5c);
      if (this.leafCache.size >= MAX_LEAF_CACHE) this.leafCache.clear();
      this.leafCache.set(key, leaf);
    }
    const st = await this.statusOf(leaf.serial);
    if (!st || st.issuerId !== leaf.issuerId) throw CaErrors.chainInvalid('the certificate was not issued by this CA');
    const now = this.now().getTime();
    if (now < st.notBefore.getTime()) throw CaErrors.chainInvalid('the certificate is not valid yet');
    const status = st.revokedAt ? 'revoked' : st.notAfter.getTime() <= now ? 'expired' : 'good';
    return {
      serial: leaf.serial,
      subjectId: st.subjectId,
      fqdn: st.fqdn,
      status,
      publicKey: leaf.publicKey,
      alg: leaf.alg,
    };
  }

  private parseLeaf(x5c: readonly string[]): Leaf {
    const decode = (s: string): Uint8Array => {
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0 || s.length > 16_384) {
        throw CaErrors.chainInvalid('x5c entries must be base64 DER');
      }
      return new Uint8Array(Buffer.from(s, 'base64'));
    };
    let cert: pkijs.Certificate;
    try {
      cert = certFromDer(decode(x5c[0]!));
    } catch (e) {
      if (e instanceof Error && 'code' in e) throw e;
      throw CaErrors.chainInvalid('the first x5c entry is not a DER certificate');
    }
    let candidates = this.issuers;
    if (x5c[1] !== undefined) {
      const der = decode(x5c[1]);
      candidates = this.issuers.filter((i) => bytesEqual(i.der, der));
      if (candidates.length === 0) throw CaErrors.chainInvalid("the issuing certificate is not one of this CA's");
    }
    const oid = cert.signatureAlgorithm.algorithmId;
    const sig = cert.signatureValue.valueBlock.valueHexView;
    const issuer = candidates.find(
      (i) => cert.issuer.isEqual(i.cert.subject) && verifyBytes(oid, i.publicKey, cert.tbsView, sig),
    );
    if (!issuer) throw CaErrors.chainInvalid('the certificate signature does not verify with our issuing CA');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({
        key: Buffer.from(cert.subjectPublicKeyInfo.toSchema().toBER(false)),
        format: 'der',
        type: 'spki',
      });
    } catch {
      throw CaErrors.chainInvalid('the certificate key cannot be loaded');
    }
    const alg = algOf(publicKey);
    if (!alg) throw CaErrors.chainInvalid('the certificate key type is not supported');
    const v = cert.serialNumber.valueBlock.valueHexView;
    let s = 0;
    while (s < v.length - 1 && v[s] === 0) s++;
    return {
      serial: Buffer.from(v.subarray(s)).toString('hex'),
      issuerId: issuer.id,
      notBefore: cert.notBefore.value,
      publicKey,
      alg,
    };
  }

  // ------------------------------------------------------------------ CRL

  /**
   * The DER CRL of one issuing CA (default: the current one), cached until a revocation or an
   * hour passes. A process without the passphrase serves the newest stored CRL if it is
   * current (built after the latest revocation), else CA_ERR_NO_PASSPHRASE.
   */
  async crl(issuerId?: string): Promise<Uint8Array> {
    await this.fresh();
    const issuer = issuerId === undefined ? this.currentIssuer() : this.issuerById(issuerId);
    if (!issuer) throw issuerId === undefined ? CaErrors.notInitialized() : CaErrors.unknownIssuer(issuerId);
    const hit = this.crlCache.get(issuer.id);
    if (hit && hit.gen === this.cacheGen && Date.now() - hit.builtAt < CRL_REBUILD_MS) return hit.der;
    const gen = this.cacheGen;
    const der = this.buildCrlFor(issuer);
    this.crlCache.set(issuer.id, { gen, builtAt: Date.now(), der });
    der.catch(() => {
      if (this.crlCache.get(issuer.id)?.der === der) this.crlCache.delete(issuer.id);
    });
    return der;
  }

  private async buildCrlFor(issuer: Issuer): Promise<Uint8Array> {
    const started = Date.now();
    // Read the counter first: a revocation racing with this build makes the stored epoch
    // older than the entries, which only makes a keyless reader more careful.
    const { revocations } = await repo.caVersion(this.db);
    const now = this.now();
    if (!issuer.signer) {
      const stored = await repo.storedCrl(this.db, issuer.id);
      if (stored && stored.epoch === revocations && stored.nextUpdate.getTime() > now.getTime()) return stored.der;
      throw CaErrors.noPassphrase();
    }
    // Entries revoked since the last build are encoded once and kept with their row; the CRL
    // is then the stored entries, concatenated by the database, under a fresh TBS head.
    let entries: Awaited<ReturnType<typeof repo.crlEntries>>;
    for (let attempt = 0; ; attempt++) {
      const fresh = await repo.revokedWithoutEntry(this.db, issuer.id, now);
      for (let i = 0; i < fresh.length; i += CRL_FILL_BATCH) {
        const batch = fresh.slice(i, i + CRL_FILL_BATCH);
        await repo.saveCrlEntries(
          this.db,
          batch.map((e) => e.serial),
          batch.map((e) => Buffer.from(encodeEntry(e)).toString('hex')),
        );
      }
      entries = await repo.crlEntries(this.db, issuer.id, now);
      if (entries.missing === 0) break;
      // Revoked between the two statements: encode those too.
      if (attempt >= 3) throw new Error('CRL entries keep changing while the CRL is built');
    }
    const crlNumber = await repo.nextCrlNumber(this.db);
    const thisUpdate = wholeSeconds(now);
    const nextUpdate = wholeSeconds(new Date(now.getTime() + CRL_VALIDITY_MS));
    const der = assembleCrl(
      { name: issuer.cert.subject, ski: issuer.ski, signer: issuer.signer },
      { crlNumber, thisUpdate, nextUpdate },
      entries.der,
      entries.count,
    );
    await repo.saveCrl(this.db, issuer.id, { crlNumber, epoch: revocations, thisUpdate, nextUpdate, der });
    this.stats.crlBuilds++;
    this.stats.lastCrlBuildMs = Date.now() - started;
    return der;
  }

  // ------------------------------------------------------------------ OCSP

  /**
   * RFC 6960 answer to a DER OCSPRequest; never throws. A request without a nonce for one
   * certificate gets a pre-produced answer (RFC 5019 lightweight profile) for up to a minute,
   * looked up by the request bytes before any decoding; it is dropped as soon as that
   * certificate's cached status is (a revocation anywhere deletes it, see fresh()).
   */
  async ocsp(requestDer: Uint8Array): Promise<Uint8Array> {
    try {
      await this.fresh();
      const key =
        requestDer.byteLength <= 512
          ? Buffer.from(requestDer.buffer, requestDer.byteOffset, requestDer.byteLength).toString('latin1')
          : undefined;
      if (key !== undefined) {
        const hit = this.ocspCache.get(key);
        if (hit && Date.now() - hit.at < OCSP_CACHE_MS && this.statusCache.get(hit.serial) === hit.status) {
          return hit.der;
        }
      }
      const parsed = parseOcspRequest(
        requestDer,
        this.issuers.map((i) => i.ocsp),
      );
      if (!parsed.ok) return ocspError(parsed.status);
      const issuer = this.issuerById(parsed.issuer.id)!;
      const gen = this.cacheGen;
      const single = parsed.items.length === 1 && !parsed.nonce ? parsed.items[0]!.serial : undefined;
      const answers: OcspAnswer[] = [];
      for (const item of parsed.items) answers.push({ item, status: await this.certState(item.serial, issuer.id) });
      if (!issuer.signer) return await this.storedOcsp(answers);
      const der = buildOcspResponse(
        { ...issuer.ocsp, signer: issuer.signer },
        answers,
        this.now(),
        OCSP_VALIDITY_MS,
        parsed.nonce,
      );
      this.stats.ocspResponses++;
      const status = single !== undefined ? this.statusCache.get(single) : undefined;
      if (single !== undefined && key !== undefined && status && gen === this.cacheGen) {
        if (this.ocspCache.size >= MAX_LEAF_CACHE) this.ocspCache.clear();
        this.ocspCache.set(key, { gen, at: Date.now(), der, serial: single, status });
        await this.persistOcsp(single, answers[0]!.status, der);
      }
      return der;
    } catch {
      return ocspError('internalError');
    }
  }

  private async certState(serial: string, issuerId: string): Promise<CertState> {
    const st = await this.statusOf(serial);
    if (!st || st.issuerId !== issuerId) return { state: 'unknown' };
    if (st.revokedAt && st.reason) return { state: 'revoked', revokedAt: st.revokedAt, reason: st.reason };
    return { state: 'good' };
  }

  /** Keeps a nonce-less answer in the store for processes without the passphrase. */
  private async persistOcsp(serial: string, state: CertState, der: Uint8Array): Promise<void> {
    if (state.state === 'unknown') return;
    const revoked = state.state === 'revoked';
    const prev = this.ocspPersisted.get(serial);
    if (prev && prev.revoked === revoked && Date.now() - prev.at < OCSP_VALIDITY_MS / 4) return;
    const nextUpdate = wholeSeconds(new Date(this.now().getTime() + OCSP_VALIDITY_MS));
    await repo.saveOcsp(this.db, serial, revoked, nextUpdate, der).catch(() => undefined);
    if (this.ocspPersisted.size > MAX_STATUS_CACHE) this.ocspPersisted.clear();
    this.ocspPersisted.set(serial, { revoked, at: Date.now() });
  }

  private async storedOcsp(answers: readonly OcspAnswer[]): Promise<Uint8Array> {
    const a = answers[0];
    if (answers.length !== 1 || !a || a.status.state === 'unknown') return ocspError('tryLater');
    const stored = await repo.storedOcsp(this.db, a.item.serial);
    if (
      !stored ||
      stored.revoked !== (a.status.state === 'revoked') ||
      stored.nextUpdate.getTime() <= this.now().getTime()
    ) {
      return ocspError('tryLater');
    }
    return stored.der;
  }

  /** Certificates that are good and expire within `days` (for the near-expiry metric). */
  async expiringWithin(days: number): Promise<number> {
    const now = this.now();
    return repo.countExpiringBefore(this.db, now, new Date(now.getTime() + days * DAY));
  }
}

// ------------------------------------------------------------------ leaf signing

interface LeafParams {
  serial: string;
  /** Canonical DER SubjectPublicKeyInfo and its subjectPublicKey bits. */
  spkiDer: Uint8Array;
  keyBits: Uint8Array;
  fqdn: string;
  uri: string | undefined;
  notBefore: Date;
  notAfter: Date;
  rsa: boolean;
}

/** The constant parts of every leaf TBS of one issuer, DER-encoded once (by asn1js/pkijs). */
interface LeafTemplate {
  version: Uint8Array;
  sigAlg: Uint8Array;
  issuerName: Uint8Array;
  /** basicConstraints, keyUsage (plain / RSA), extKeyUsage. */
  bc: Uint8Array;
  kuSig: Uint8Array;
  kuRsa: Uint8Array;
  eku: Uint8Array;
  aki: Uint8Array;
  crlDp: Uint8Array;
  aia: Uint8Array;
  emptyName: Uint8Array;
}

const BC_LEAF_DER = enc(BC_LEAF);
const KU_SIG_DER = enc(KU_SIG);
const KU_RSA_DER = enc(KU_RSA);
const EKU_DER = enc(EKU);
const V3_DER = enc(
  new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new asn1js.Integer({ value: 2 })] }),
);

function leafTemplate(issuer: Issuer & { signer: SigningKey }): LeafTemplate {
  if (!issuer.leafTpl) {
    issuer.leafTpl = {
      version: V3_DER,
      sigAlg: enc(issuer.signer.algorithm),
      issuerName: enc(issuer.cert.subject),
      bc: BC_LEAF_DER,
      kuSig: KU_SIG_DER,
      kuRsa: KU_RSA_DER,
      eku: EKU_DER,
      aki: enc(issuer.leafExts.aki),
      crlDp: enc(issuer.leafExts.crlDp),
      aia: enc(issuer.leafExts.aia),
      emptyName: enc(new pkijs.RelativeDistinguishedNames()),
    };
  }
  return issuer.leafTpl;
}

/**
 * The leaf's TBSCertificate: the same structure, field order and encodings the pkijs
 * Certificate builder produces (test/ca/fastpath.test.ts compares them byte for byte), but the
 * constant parts come pre-encoded from the issuer's template and only serial, validity,
 * subject, key, SKI and SAN are encoded per certificate.
 */
export function leafTbs(issuer: Issuer & { signer: SigningKey }, p: LeafParams): Uint8Array {
  const t = leafTemplate(issuer);
  // ub-common-name is 64: longer names live in the SAN only (then the SAN is critical).
  const withCn = p.fqdn.length <= 64;
  const altNames = [new pkijs.GeneralName({ type: 2, value: p.fqdn })];
  if (p.uri !== undefined) altNames.push(uriName(p.uri));
  const exts = tlv(TAG.ctx(3), [
    tlv(TAG.SEQUENCE, [
      t.bc,
      p.rsa ? t.kuRsa : t.kuSig,
      t.eku,
      enc(ext(OID.subjectKeyIdentifier, false, octets(sha1(p.keyBits)))),
      t.aki,
      enc(ext(OID.subjectAltName, !withCn, new pkijs.AltName({ altNames }))),
      t.crlDp,
      t.aia,
    ]),
  ]);
  return tlv(TAG.SEQUENCE, [
    t.version,
    enc(serialToInteger(p.serial)),
    t.sigAlg,
    t.issuerName,
    tlv(TAG.SEQUENCE, [enc(x509Time(p.notBefore)), enc(x509Time(p.notAfter))]),
    withCn ? enc(cnName(p.fqdn)) : t.emptyName,
    p.spkiDer,
    exts,
  ]);
}

function signLeaf(issuer: Issuer & { signer: SigningKey }, p: LeafParams): Uint8Array {
  const tbs = leafTbs(issuer, p);
  const t = leafTemplate(issuer);
  const sig = enc(new asn1js.BitString({ valueHex: signBytes(issuer.signer, tbs).slice().buffer }));
  return tlv(TAG.SEQUENCE, [tbs, t.sigAlg, sig]);
}

/**
 * Test-only: signs a leaf for any name with the current issuing key, bypassing every check
 * (to show the name constraint holds). Not exported from ca/index.ts.
 */
export function unsafeSignLeafForTest(ca: CertificateAuthority, fqdn: string, spkiDerBytes: Uint8Array): string {
  const issuer = (ca as unknown as { signingIssuer(): Issuer & { signer: SigningKey } }).signingIssuer();
  const spki = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(spkiDerBytes.slice()).result });
  const now = Date.now();
  const der = signLeaf(issuer, {
    serial: randomSerial(),
    spkiDer: spkiDerBytes,
    keyBits: new Uint8Array(spki.subjectPublicKey.valueBlock.valueHexView),
    fqdn,
    uri: undefined,
    notBefore: wholeSeconds(new Date(now - BACKDATE_MS)),
    notAfter: wholeSeconds(new Date(now + DAY)),
    rsa: false,
  });
  return toPem('CERTIFICATE', der);
}
