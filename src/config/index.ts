import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { parseSecondary } from '../../dns/index.js';

/** The one typed, validated configuration of `ans serve`. Built from flags > ANS_* env > defaults. */
export interface Config {
  readonly dataDir: string;
  readonly zone: string; // always with the trailing dot
  readonly dnsPort: number;
  readonly httpPort: number;
  readonly host: string;
  readonly publicUrl: string; // no trailing slash
  readonly demo: boolean;
  readonly databaseUrl: string | undefined;
  readonly heartbeatIntervalMs: number;
  /** Audit entries older than this are removed (0: keep everything). */
  readonly auditRetentionDays: number;
  readonly certValidityDays: number;
  readonly caPassphrase: string | undefined;
  readonly embedder: 'use' | 'transformers' | 'hash';
  readonly modelDir: string | undefined;
  readonly dnsWorkers: number;
  readonly notify: readonly string[];
  readonly transferAcl: readonly string[];
  readonly tsigKeys: readonly { name: string; algorithm: 'hmac-sha256'; secret: string }[];
  readonly nsAddresses: readonly string[];
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly bodyLimit: number;
  /** A request whose headers are not complete after this long gets 408 and is closed (slow-loris). */
  readonly headersTimeoutMs: number;
  readonly registerPerMinute: number;
  readonly resolvePerMinute: number;
  readonly tlsCert: string | undefined;
  /**
   * Set when ANS listens beyond loopback without --tls-cert: the public URL's host, a name in the
   * zone, for which the ANS CA issues the HTTPS server's certificate.
   */
  readonly serverCertHost: string | undefined;
  readonly tlsKey: string | undefined;
  /** Federation (AMSP): this gateway's level, peers to dial, extra trust anchors, timers. */
  readonly role: 'l1' | 'l2';
  readonly peers: readonly string[];
  readonly peerCas: readonly string[];
  readonly holdTimeMs: number;
  readonly keepaliveMs: number;
  /** What we send peers (send-filter, redaction) and how fast peers may subscribe. */
  readonly exportPolicy: ExportFlags;
  readonly maxSubscriptions: number;
  readonly subscriptionsPerMinute: number;
  /** Peers' zones served as a DNS secondary (`ZONE@IP:PORT[:TSIGKEY]`). */
  readonly secondaries: readonly { zone: string; primary: string; key?: string }[];
  /** SOA timers of our zone (seconds), which our secondaries follow. */
  readonly soa: { readonly refresh: number; readonly retry: number; readonly expire: number };
  /** Gateway start-up settings; values stored with `PUT /v1/gateway/settings` take precedence. */
  readonly gateway: GatewayFlags;
}

/** The gateway settings that have `ans serve` flags (names as in `PUT /v1/gateway/settings`). */
export interface GatewayFlags {
  readonly connectTimeoutMs: number;
  readonly firstByteTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly requestBodyIdleMs: number;
  readonly approvalTimeoutMs: number;
  readonly bodyLimit: number;
  readonly ratePerMinute: number;
  readonly rateBurst: number;
}

/** Federation export policy flags (docs/amsp.md section 5). */
export interface ExportFlags {
  readonly allowDomains: readonly string[];
  readonly denyDomains: readonly string[];
  readonly allowTags: readonly string[];
  readonly denyTags: readonly string[];
  readonly redact: readonly ('description' | 'skills' | 'embedding')[];
}

/** Flag -> gateway setting, with the range the settings API accepts. */
const GATEWAY_FLAGS: readonly { flag: string; key: keyof GatewayFlags; min: number; max: number }[] = [
  { flag: 'gateway-connect-timeout-ms', key: 'connectTimeoutMs', min: 1, max: 120_000 },
  { flag: 'gateway-first-byte-timeout-ms', key: 'firstByteTimeoutMs', min: 1, max: 3_600_000 },
  { flag: 'gateway-idle-timeout-ms', key: 'idleTimeoutMs', min: 1, max: 3_600_000 },
  { flag: 'gateway-body-idle-ms', key: 'requestBodyIdleMs', min: 1, max: 3_600_000 },
  { flag: 'gateway-approval-timeout-ms', key: 'approvalTimeoutMs', min: 1, max: 86_400_000 },
  { flag: 'gateway-body-limit', key: 'bodyLimit', min: 1024, max: 1024 ** 4 },
  { flag: 'gateway-rate', key: 'ratePerMinute', min: 1, max: 100_000_000 },
  { flag: 'gateway-burst', key: 'rateBurst', min: 1, max: 1_000_000 },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** One row per `ans serve` flag: the CLI builds its options and --help from this table. */
export interface OptionSpec {
  flag: string; // kebab-case, without dashes
  arg?: string; // placeholder when the flag takes a value
  help: string;
  default?: string;
  repeatable?: boolean;
  env?: string; // extra env name besides ANS_<FLAG>
}

export const SERVE_OPTIONS: readonly OptionSpec[] = [
  { flag: 'data-dir', arg: 'DIR', help: 'data directory (PGlite files, saved index, admin token)', default: './.ans' },
  { flag: 'zone', arg: 'ZONE', help: 'the DNS zone agents live in', default: 'agents.internal.' },
  { flag: 'dns-port', arg: 'N', help: 'DNS port, UDP and TCP (0 = any free port)', default: '5300' },
  { flag: 'http-port', arg: 'N', help: 'HTTP port (0 = any free port)', default: '8080' },
  { flag: 'host', arg: 'ADDR', help: 'address to listen on', default: '127.0.0.1' },
  { flag: 'public-url', arg: 'URL', help: 'base URL for every link ANS hands out (default http://<host>:<http-port>)' },
  { flag: 'demo', help: 'load sample agents (the home-broadband use case) on start' },
  {
    flag: 'database-url',
    arg: 'URL',
    help: 'PostgreSQL URL; default: embedded PGlite in the data dir',
    env: 'DATABASE_URL',
  },
  {
    flag: 'heartbeat-interval',
    arg: 'SECONDS',
    help: 'expected agent heartbeat interval; 3 missed = offline',
    default: '30',
  },
  { flag: 'cert-validity-days', arg: 'DAYS', help: 'agent certificate validity (1-397)', default: '30' },
  {
    flag: 'audit-retention',
    arg: 'DAYS',
    help: 'remove audit entries older than this, hourly (0 keeps everything; the chain stays verifiable)',
    default: '0',
  },
  {
    flag: 'ca-passphrase',
    arg: 'TEXT',
    help: 'passphrase of the CA keys at rest (default: generated into DIR/ca.passphrase)',
  },
  {
    flag: 'embedder',
    arg: 'KIND',
    help: 'use (Universal Sentence Encoder lite) | transformers | hash',
    default: 'use',
  },
  { flag: 'model-dir', arg: 'DIR', help: 'local model directory for --embedder transformers' },
  { flag: 'dns-workers', arg: 'N', help: 'DNS worker processes (0 = answer in the main process)', default: '0' },
  { flag: 'notify', arg: 'IP:PORT', help: 'secondary to NOTIFY on zone changes (repeatable)', repeatable: true },
  {
    flag: 'transfer-acl',
    arg: 'CIDR',
    help: 'non-loopback address allowed AXFR/IXFR with TSIG (repeatable)',
    repeatable: true,
  },
  {
    flag: 'tsig-key',
    arg: 'NAME:ALG:SECRET',
    help: 'TSIG key for zone transfers, e.g. xfr:hmac-sha256:<base64> (repeatable)',
    repeatable: true,
  },
  {
    flag: 'ns-address',
    arg: 'IP',
    help: 'glue address of the zone name server (repeatable; default: --host)',
    repeatable: true,
  },
  { flag: 'log-level', arg: 'LEVEL', help: 'fatal|error|warn|info|debug|trace|silent', default: 'info' },
  { flag: 'body-limit', arg: 'BYTES', help: 'largest accepted request body', default: '1048576' },
  {
    flag: 'headers-timeout',
    arg: 'SECONDS',
    help: 'answer 408 and close when request headers take longer (slow-loris)',
    default: '10',
  },
  { flag: 'register-rate', arg: 'N', help: 'registrations per minute per client address', default: '60' },
  { flag: 'resolve-rate', arg: 'N', help: 'resolve queries per minute per client', default: '600' },
  { flag: 'tls-cert', arg: 'FILE', help: 'TLS certificate (PEM) for HTTPS' },
  { flag: 'tls-key', arg: 'FILE', help: 'TLS private key (PEM) for HTTPS' },
  { flag: 'role', arg: 'LEVEL', help: 'federation level: l1 (edge) | l2 (core)', default: 'l1' },
  {
    flag: 'peer',
    arg: 'URL',
    help: 'base URL of a peer gateway to open an AMSP session with (repeatable)',
    repeatable: true,
  },
  {
    flag: 'peer-ca',
    arg: 'FILE',
    help: "PEM root of another domain's CA trusted for peering (repeatable)",
    repeatable: true,
  },
  { flag: 'hold-time', arg: 'SECONDS', help: 'AMSP hold time: a peer silent this long is down', default: '90' },
  { flag: 'keepalive', arg: 'SECONDS', help: 'AMSP keepalive interval', default: '30' },
  {
    flag: 'export-allow-domain',
    arg: 'ZONE',
    help: 'AMSP send-filter: only records of these domains go to peers (repeatable; *.suffix allowed)',
    repeatable: true,
  },
  {
    flag: 'export-deny-domain',
    arg: 'ZONE',
    help: 'AMSP send-filter: records of this domain never go to peers (repeatable; deny wins)',
    repeatable: true,
  },
  {
    flag: 'export-allow-tag',
    arg: 'TAG',
    help: 'AMSP send-filter: only records with one of these skill tags go to peers (repeatable)',
    repeatable: true,
  },
  {
    flag: 'export-deny-tag',
    arg: 'TAG',
    help: 'AMSP send-filter: records with this skill tag never go to peers (repeatable)',
    repeatable: true,
  },
  {
    flag: 'export-redact',
    arg: 'FIELD',
    help: 'leave out of our records sent to peers: description | skills | embedding (repeatable)',
    repeatable: true,
  },
  { flag: 'max-subscriptions', arg: 'N', help: 'AMSP: most subscription topics per peer', default: '256' },
  {
    flag: 'subscription-rate',
    arg: 'N',
    help: 'AMSP: subscription topics a peer may add per minute (more: RATE_LIMITED)',
    default: '600',
  },
  {
    flag: 'secondary',
    arg: 'ZONE@IP:PORT[:KEY]',
    help: "serve a peer's zone as a DNS secondary from its primary, TSIG key KEY (repeatable)",
    repeatable: true,
  },
  {
    flag: 'soa-refresh',
    arg: 'SECONDS',
    help: 'SOA refresh of our zone (secondaries poll this often)',
    default: '300',
  },
  { flag: 'soa-retry', arg: 'SECONDS', help: 'SOA retry of our zone', default: '60' },
  {
    flag: 'soa-expire',
    arg: 'SECONDS',
    help: 'SOA expire: secondaries drop our zone after this long without the primary',
    default: '1209600',
  },
  // Gateway start-up settings (a value stored with PUT /v1/gateway/settings wins over these).
  { flag: 'gateway-connect-timeout-ms', arg: 'MS', help: 'gateway: connect to an agent within', default: '5000' },
  {
    flag: 'gateway-first-byte-timeout-ms',
    arg: 'MS',
    help: "gateway: an agent's response headers within",
    default: '60000',
  },
  {
    flag: 'gateway-idle-timeout-ms',
    arg: 'MS',
    help: 'gateway: longest pause inside a response body (not event streams)',
    default: '300000',
  },
  {
    flag: 'gateway-body-idle-ms',
    arg: 'MS',
    help: "gateway: longest pause inside a caller's request body (slow-loris)",
    default: '30000',
  },
  {
    flag: 'gateway-approval-timeout-ms',
    arg: 'MS',
    help: 'gateway: how long a call waits for human approval',
    default: '300000',
  },
  { flag: 'gateway-body-limit', arg: 'BYTES', help: 'gateway: largest forwarded request body', default: '67108864' },
  { flag: 'gateway-rate', arg: 'N', help: 'gateway: calls per minute per caller', default: '600000' },
  { flag: 'gateway-burst', arg: 'N', help: 'gateway: burst of calls per caller', default: '10000' },
];

export type RawOptions = Record<string, string | boolean | string[] | undefined>;

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Flags > env > defaults, for one option. Env lists are comma-separated. */
export function pick(
  raw: RawOptions,
  env: NodeJS.ProcessEnv,
  spec: OptionSpec,
): string | boolean | string[] | undefined {
  const v = raw[camel(spec.flag)];
  if (v !== undefined && !(Array.isArray(v) && v.length === 0)) return v;
  const names = [`ANS_${spec.flag.toUpperCase().replace(/-/g, '_')}`, ...(spec.env ? [spec.env] : [])];
  for (const n of names) {
    const e = env[n];
    if (e === undefined || e === '') continue;
    if (spec.repeatable)
      return e
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    if (!spec.arg) return e === '1' || e.toLowerCase() === 'true';
    return e;
  }
  if (spec.repeatable) return [];
  if (!spec.arg) return false;
  return spec.default;
}

function int(name: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`--${name} must be an integer from ${min} to ${max}, got '${String(v)}'`);
  return n;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Builds and validates the config; throws ConfigError with a message naming the bad flag. */
export function buildConfig(raw: RawOptions, env: NodeJS.ProcessEnv = process.env): Config {
  const get = (flag: string) => {
    const spec = SERVE_OPTIONS.find((s) => s.flag === flag);
    if (!spec) throw new Error(`unknown option ${flag}`);
    return pick(raw, env, spec);
  };
  const zoneRaw = String(get('zone')).toLowerCase();
  const zone = zoneRaw.endsWith('.') ? zoneRaw : `${zoneRaw}.`;
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+$/.test(zone) || zone.length > 200) {
    throw new ConfigError(`--zone '${zoneRaw}' is not a valid DNS name`);
  }
  const host = String(get('host'));
  if (host !== 'localhost' && isIP(host) === 0)
    throw new ConfigError(`--host must be an IP address or localhost, got '${host}'`);
  const httpPort = int('http-port', get('http-port'), 0, 65535);
  const tlsCert = str(get('tls-cert'));
  const tlsKey = str(get('tls-key'));
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  // Plain HTTP only on loopback; anywhere else ANS serves HTTPS (TLS 1.3) only, with --tls-cert or
  // with a certificate its own CA issues for the public URL's host.
  const secure = !isLoopback(host) || tlsCert !== undefined;
  const hostForUrl = isIP(host) === 6 ? `[${host}]` : host;
  const publicUrlRaw = str(get('public-url')) ?? `${secure ? 'https' : 'http'}://${hostForUrl}:${httpPort}`;
  let publicUrl: string;
  let publicHost: string;
  try {
    const u = new URL(publicUrlRaw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    publicUrl = u.toString().replace(/\/+$/, '');
    publicHost = u.hostname.toLowerCase();
  } catch {
    throw new ConfigError(`--public-url must be an http(s) URL, got '${publicUrlRaw}'`);
  }
  let serverCertHost: string | undefined;
  if (!isLoopback(host) && !tlsCert) {
    if (!publicUrl.startsWith('https:') || !publicHost.endsWith(`.${zone.slice(0, -1)}`) || isIP(publicHost) !== 0)
      throw new ConfigError(
        `listening on ${host} serves HTTPS only: pass --tls-cert and --tls-key, or a --public-url ` +
          `https://<name>.${zone.slice(0, -1)}:PORT whose host the ANS CA can certify (or listen on 127.0.0.1)`,
      );
    serverCertHost = publicHost;
  }
  const embedder = String(get('embedder'));
  if (embedder !== 'use' && embedder !== 'transformers' && embedder !== 'hash') {
    throw new ConfigError(`--embedder must be use, transformers or hash, got '${embedder}'`);
  }
  const modelDir = str(get('model-dir'));
  if (embedder === 'transformers' && !modelDir) throw new ConfigError('--embedder transformers needs --model-dir');
  const logLevel = String(get('log-level'));
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  if (!(levels as readonly string[]).includes(logLevel))
    throw new ConfigError(`--log-level must be one of ${levels.join(', ')}`);
  const list = (flag: string) => (get(flag) as string[] | undefined) ?? [];
  const tsigKeys = list('tsig-key').map((k) => {
    const m = /^([A-Za-z0-9._-]+):(hmac-sha256):([A-Za-z0-9+/=]+)$/.exec(k);
    if (!m) throw new ConfigError(`--tsig-key must be NAME:hmac-sha256:BASE64SECRET, got '${k.split(':')[0]}:...'`);
    return { name: m[1]!, algorithm: 'hmac-sha256' as const, secret: m[3]! };
  });
  for (const n of list('notify')) {
    if (!/^[\d.]+:\d+$|^\[[0-9a-f:]+\]:\d+$/i.test(n)) throw new ConfigError(`--notify must be IP:PORT, got '${n}'`);
  }
  const role = String(get('role'));
  if (role !== 'l1' && role !== 'l2') throw new ConfigError(`--role must be l1 or l2, got '${role}'`);
  const peers = list('peer').map((p) => {
    try {
      const u = new URL(p);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      return u.toString().replace(/\/+$/, '');
    } catch {
      throw new ConfigError(`--peer must be an http(s) URL, got '${p}'`);
    }
  });
  const holdTimeMs = int('hold-time', get('hold-time'), 3, 3600) * 1000;
  const keepaliveMs = int('keepalive', get('keepalive'), 1, 1200) * 1000;
  if (keepaliveMs * 3 > holdTimeMs) throw new ConfigError('--keepalive must be at most a third of --hold-time');
  const redactable = ['description', 'skills', 'embedding'] as const;
  const redact = list('export-redact').map((f) => {
    if (!(redactable as readonly string[]).includes(f))
      throw new ConfigError(`--export-redact must be one of ${redactable.join(', ')}, got '${f}'`);
    return f as (typeof redactable)[number];
  });
  const domainFlag = (flag: string) =>
    list(flag).map((d) => {
      const z = d.toLowerCase().replace(/\.$/, '');
      if (!/^(\*|(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*)$/.test(z))
        throw new ConfigError(`--${flag} must be a zone, got '${d}'`);
      return z;
    });
  const exportPolicy: ExportFlags = {
    allowDomains: domainFlag('export-allow-domain'),
    denyDomains: domainFlag('export-deny-domain'),
    allowTags: list('export-allow-tag'),
    denyTags: list('export-deny-tag'),
    redact,
  };
  const secondaries = list('secondary').map((spec) => {
    let s: { zone: string; primary: string; key?: string };
    try {
      s = parseSecondary(spec);
    } catch (e) {
      throw new ConfigError(`--secondary: ${(e as Error).message}`);
    }
    if (s.key !== undefined && !tsigKeys.some((k) => k.name === s.key))
      throw new ConfigError(`--secondary ${s.zone}: TSIG key '${s.key}' is not given with --tsig-key`);
    if (s.zone === zone.replace(/\.$/, '').toLowerCase())
      throw new ConfigError(`--secondary ${s.zone} is our own --zone`);
    return s;
  });
  const dnsWorkers = int('dns-workers', get('dns-workers'), 0, 64);
  const soa = {
    refresh: int('soa-refresh', get('soa-refresh'), 1, 2_147_483_647),
    retry: int('soa-retry', get('soa-retry'), 1, 2_147_483_647),
    expire: int('soa-expire', get('soa-expire'), 1, 2_147_483_647),
  };
  const gateway = Object.fromEntries(
    GATEWAY_FLAGS.map((g) => [g.key, int(g.flag, get(g.flag), g.min, g.max)]),
  ) as unknown as GatewayFlags;
  return {
    dataDir: resolve(String(get('data-dir'))),
    zone,
    dnsPort: int('dns-port', get('dns-port'), 0, 65535),
    httpPort,
    host,
    publicUrl,
    demo: get('demo') === true,
    databaseUrl: str(get('database-url')),
    heartbeatIntervalMs: int('heartbeat-interval', get('heartbeat-interval'), 1, 86_400) * 1000,
    certValidityDays: int('cert-validity-days', get('cert-validity-days'), 1, 397),
    auditRetentionDays: int('audit-retention', get('audit-retention'), 0, 36_500),
    caPassphrase: str(get('ca-passphrase')),
    embedder,
    modelDir,
    dnsWorkers,
    notify: list('notify'),
    transferAcl: list('transfer-acl'),
    tsigKeys,
    nsAddresses: list('ns-address'),
    logLevel: logLevel as Config['logLevel'],
    bodyLimit: int('body-limit', get('body-limit'), 1024, 64 * 1024 * 1024),
    headersTimeoutMs: int('headers-timeout', get('headers-timeout'), 1, 60) * 1000,
    registerPerMinute: int('register-rate', get('register-rate'), 1, 1_000_000),
    resolvePerMinute: int('resolve-rate', get('resolve-rate'), 1, 1_000_000),
    tlsCert,
    serverCertHost,
    tlsKey,
    role,
    peers,
    peerCas: list('peer-ca').map((f) => resolve(f)),
    holdTimeMs,
    keepaliveMs,
    exportPolicy,
    maxSubscriptions: int('max-subscriptions', get('max-subscriptions'), 1, 100_000),
    subscriptionsPerMinute: int('subscription-rate', get('subscription-rate'), 1, 1_000_000),
    secondaries,
    soa,
    gateway,
  };
}
