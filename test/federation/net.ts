/**
 * Test networks of real `ans serve` processes peered with AMSP: every gateway trusts every
 * other's CA root (the --peer-ca files are written once each CA exists; trust stores re-read
 * them), ports are chosen up front so peers can name each other.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentCard } from '../../ans/index.js';
import { agentToken, createKeyAndCsr } from '../../src/client/index.js';
import { card, client } from '../helpers/api.js';
import { freePort } from '../helpers/ports.js';
import { startServer, tempDir, type RunningServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

export interface Node {
  zone: string; // no trailing dot
  role: 'l1' | 'l2';
  /** Indexes of the nodes this one dials. */
  peers: number[];
}

export interface Net {
  urls: string[];
  servers: RunningServer[];
  cas: string[];
  args(i: number): string[];
  /** Starts node i again (same port, same data dir) after a stop or kill; `more` flags win. */
  restart(i: number, more?: string[]): Promise<RunningServer>;
  stop(): Promise<void>;
}

export interface RoutesView {
  gateway: string;
  forwarding: { id: string; fqdn: string; domain: string; nextHop: string; origin: string; path: string[] }[];
  inapplicable: { id: string; fqdn: string; peer: string }[];
  local: { id: string; fqdn: string }[];
  peers: {
    uri: string;
    role: string;
    state: string;
    messagesIn: number;
    messagesOut: number;
    updatesIn: number;
    withdrawsIn: number;
    bytesOut: number;
    subscriptions: string[];
  }[];
  stats: Record<string, number>;
}

export const TIMERS = ['--hold-time', '3', '--keepalive', '1'];

/** HTTPS for every node: one server certificate for 127.0.0.1, trusted by all as a --peer-ca. */
export interface NetTls {
  certFile: string;
  keyFile: string;
}

export async function startNet(nodes: Node[], extra: (i: number) => string[] = () => [], tls?: NetTls): Promise<Net> {
  const dir = tempDir('ans-net-');
  const cas = nodes.map((n) => join(dir, `${n.zone}.pem`));
  const ports: number[] = [];
  for (let i = 0; i < nodes.length; i++) ports.push(await freePort());
  const urls = ports.map((p) => `${tls ? 'https' : 'http'}://127.0.0.1:${p}`);
  const tlsArgs = tls ? ['--tls-cert', tls.certFile, '--tls-key', tls.keyFile, '--peer-ca', tls.certFile] : [];
  const dataDirs = nodes.map(() => tempDir('ans-node-'));
  const args = (i: number) => [
    '--zone',
    `${nodes[i]!.zone}.`,
    '--role',
    nodes[i]!.role,
    ...nodes[i]!.peers.flatMap((p) => ['--peer', urls[p]!]),
    ...cas.flatMap((f) => ['--peer-ca', f]),
    ...TIMERS,
    '--http-port',
    String(ports[i]),
    ...tlsArgs,
    ...extra(i),
  ];
  const servers: RunningServer[] = [];
  try {
    for (let i = 0; i < nodes.length; i++) {
      servers.push(await startServer({ dataDir: dataDirs[i]!, args: args(i) }));
      const pem = await (await fetch(`${urls[i]}/v1/ca/certificate`)).text();
      writeFileSync(
        cas[i]!,
        `${pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!.at(-1)!}\n`,
      );
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop('SIGKILL')));
    throw e;
  }
  // A hook that times out leaves no processes behind either.
  for (const s of servers) process.once('exit', () => s.proc.kill('SIGKILL'));
  return {
    urls,
    servers,
    cas,
    args,
    async restart(i, more = []) {
      const s = await startServer({ dataDir: dataDirs[i]!, args: [...args(i), ...more] });
      servers[i] = s;
      process.once('exit', () => s.proc.kill('SIGKILL'));
      return s;
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

export const view = (url: string) =>
  client(url)
    .get<RoutesView>('/amsp/v1/routes')
    .then((r) => r.body);

/** Waits until node `url` has `n` established sessions. */
export function established(url: string, n: number, ms = 20_000) {
  return until(
    async () => ((await view(url)).peers.filter((p) => p.state === 'established').length >= n ? true : undefined),
    ms,
  );
}

export interface Enrolled {
  id: string;
  fqdn: string;
  token(): Promise<string>;
}

/** Registers and approves an agent in `zone` at `url`; returns a token maker. */
export async function enrol(
  url: string,
  adminToken: string,
  zone: string,
  label: string,
  over: Partial<AgentCard> = {},
): Promise<Enrolled> {
  const api = client(url);
  const fqdn = `${label}.${zone}`;
  const { keyPem, csrPem } = await createKeyAndCsr(fqdn);
  const r = await api.post<{ id: string }>('/v1/agents', { card: card(label, over), csr: csrPem });
  if (r.status !== 202) throw new Error(`register ${label}: ${r.status} ${JSON.stringify(r.body)}`);
  const a = await api.post<{ certificate: string; chain: string }>(`/v1/agents/${r.body.id}/approve`, {}, adminToken);
  if (a.status !== 200) throw new Error(`approve ${label}: ${a.status} ${JSON.stringify(a.body)}`);
  return {
    id: r.body.id,
    fqdn,
    token: () =>
      agentToken({
        agentId: r.body.id,
        zone,
        keyPem,
        certificatePem: a.body.certificate,
        chainPem: a.body.chain,
        lifetimeSeconds: 240,
      }),
  };
}
