/**
 * `ans backup` / `ans restore` through the real processes: a backup of a running PGlite server,
 * restored into a fresh data dir and into PostgreSQL, keeps the registry, the CA (it still
 * issues), DNS, the audit chain and the change sequence; bad files restore nothing.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gunzipLines, restoreStore } from '../../src/backup/index.js';
import { createKeyAndCsr } from '../../src/client/index.js';
import { openStore, type Db } from '../../src/store/index.js';
import { card, client } from '../helpers/api.js';
import { freshSchemaUrl, pgAvailable } from '../helpers/pg.js';
import { until } from '../helpers/wait.js';
import { runCli, startServer, tempDir, type RunningServer } from '../helpers/server.js';

interface Agent {
  id: string;
  fqdn: string;
  status: string;
}

let src: RunningServer;
const work = tempDir('ans-backup-');
const file = join(work, 'ans.jsonl.gz');
let agents: Agent[] = [];
let lastSeq = 0;

async function register(s: RunningServer, label: string): Promise<string> {
  const api = client(s.url);
  const { csrPem } = await createKeyAndCsr(`${label}.agents.internal`);
  const r = await api.post<{ id: string }>('/v1/agents', { card: card(label), csr: csrPem });
  expect(r.status).toBe(202);
  return r.body.id;
}

async function listAll(s: RunningServer): Promise<Agent[]> {
  const r = await client(s.url).get<{ agents: Agent[] }>('/v1/agents?limit=100', s.adminToken);
  return r.body.agents.map(({ id, fqdn, status }) => ({ id, fqdn, status })).sort((a, b) => a.id.localeCompare(b.id));
}

async function seqOf(s: RunningServer): Promise<number> {
  const m = String((await client(s.url).get('/metrics')).body);
  return Number(/^ans_change_feed_seq (\d+)/m.exec(m)?.[1] ?? NaN);
}

function dig(s: RunningServer, name: string, type: string): string {
  return execFileSync('dig', ['@127.0.0.1', '-p', String(s.dnsPort), '+short', name, type], { encoding: 'utf8' });
}

beforeAll(async () => {
  src = await startServer();
  const api = client(src.url);
  const ids = [await register(src, 'alpha'), await register(src, 'beta'), await register(src, 'gamma')];
  for (const id of ids.slice(0, 2))
    expect((await api.post(`/v1/agents/${id}/approve`, {}, src.adminToken)).status).toBe(200);
  expect((await api.post(`/v1/agents/${ids[1]}/revoke`, { reason: 'superseded' }, src.adminToken)).status).toBe(200);
  expect(
    (
      await api.post(
        '/v1/policies',
        { caller: '*.agents.internal.', target: 'alpha.agents.internal', effect: 'deny' },
        src.adminToken,
      )
    ).status,
  ).toBe(201);
  agents = await listAll(src);
  lastSeq = await seqOf(src);
  const r = await runCli(['backup', file, '--server', src.url, '--token', src.adminToken]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/wrote .*ans\.jsonl\.gz: \d+ tables, \d+ rows, sha256 [0-9a-f]{64}/);
});
afterAll(async () => {
  await src?.stop();
});

describe('ans backup', () => {
  it('writes a gzip file of JSON lines that ends with a verified marker, mode 0600, and is audited', async () => {
    const lines = gunzipSync(readFileSync(file)).toString('utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'ans-backup', version: 1, store: 'pglite' });
    expect(JSON.parse(lines.at(-1)!).end.rows).toBeGreaterThan(0);
    expect(lines.some((l) => l.startsWith('{"table":"ca_keys"'))).toBe(true);
    const audit = await client(src.url).get<{ entries: { action: string }[] }>('/v1/audit?limit=1000', src.adminToken);
    expect(audit.body.entries.map((e) => e.action)).toContain('store.backup');
  });
  it('refuses without an admin token', async () => {
    const r = await runCli(['backup', join(work, 'x.gz'), '--server', src.url, '--token', 'wrong']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('401');
    expect(existsSync(join(work, 'x.gz'))).toBe(false);
  });
});

describe('ans restore into a fresh data dir', () => {
  let dst: RunningServer;
  const dir = tempDir('ans-restored-');
  beforeAll(async () => {
    const r = await runCli(['restore', file, '--data-dir', dir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    copyFileSync(join(src.dataDir, 'ca.passphrase'), join(dir, 'ca.passphrase'));
    writeFileSync(join(dir, 'admin.token'), src.adminToken);
    dst = await startServer({ dataDir: dir });
  });
  afterAll(async () => {
    await dst?.stop();
  });

  it('has the same agents, statuses and policies, and the old admin token works', async () => {
    expect(await listAll(dst)).toEqual(agents);
    const p = await client(dst.url).get<{ items: { target: string }[] }>('/v1/policies', src.adminToken);
    expect(p.body.items.map((x) => x.target)).toContain('alpha.agents.internal');
  });
  it('serves the active agent in DNS and not the revoked one', () => {
    expect(dig(dst, '_a2a._tcp.alpha.agents.internal', 'SRV')).toMatch(/^\d+ \d+ \d+ /);
    expect(dig(dst, '_a2a._tcp.beta.agents.internal', 'SRV')).toBe('');
  });
  it('keeps the audit chain intact and the change sequence going up', async () => {
    const v = await runCli(['admin', 'audit', '--verify', '--server', dst.url, '--token', src.adminToken]);
    expect(v.code).toBe(0);
    expect(await seqOf(dst)).toBeGreaterThanOrEqual(lastSeq);
    const pending = agents.find((a) => a.status === 'pending')!;
    const api = client(dst.url);
    const a = await api.post<{ status: string; certificate: string }>(
      `/v1/agents/${pending.id}/approve`,
      {},
      src.adminToken,
    );
    // The restored CA (same keys, same passphrase) issues.
    expect(a.status).toBe(200);
    expect(a.body.status).toBe('active');
    // The new change is numbered after every restored one (the feed applies it just after).
    expect(await until(async () => ((await seqOf(dst)) > lastSeq ? true : undefined))).toBe(true);
  });
  it('a second process on the same data dir is refused while the first runs', async () => {
    await expect(startServer({ dataDir: dir })).rejects.toThrow(/in use by process/);
    const r = await runCli(['restore', file, '--data-dir', dir, '--force']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('in use by process');
  });
});

describe('ans restore of a PGlite backup into PostgreSQL', () => {
  it('loads the same agents (vectors included) and serves them', async (ctx) => {
    if (!(await pgAvailable())) return ctx.skip();
    const url = await freshSchemaUrl();
    const r = await runCli(['restore', file], { DATABASE_URL: url });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dir = tempDir('ans-restored-pg-');
    copyFileSync(join(src.dataDir, 'ca.passphrase'), join(dir, 'ca.passphrase'));
    const dst = await startServer({ dataDir: dir, env: { DATABASE_URL: url } });
    try {
      expect(await listAll({ ...dst, adminToken: src.adminToken })).toEqual(agents);
      expect(dig(dst, '_a2a._tcp.alpha.agents.internal', 'SRV')).toMatch(/^\d+ \d+ \d+ /);
    } finally {
      await dst.stop();
    }
  });
});

describe('bad backups restore nothing', () => {
  // The checks themselves run in-process against one embedded store (fast); one case goes
  // through the CLI for its exit code and message.
  let db: Db;
  const text = () => gunzipSync(readFileSync(file)).toString('utf8');
  const restore = (body: Buffer, force = false) => restoreStore(db, gunzipLines(Readable.from([body])), { force });
  const agentRows = async () => Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM agents'))[0]!.n);
  beforeAll(async () => {
    db = await openStore({});
  });
  afterAll(async () => {
    await db?.close();
  });

  it('a truncated file, through the CLI', async () => {
    const t = text();
    const f = join(work, 'cut.gz');
    writeFileSync(f, gzipSync(t.slice(0, Math.floor(t.length * 0.6))));
    const r = await runCli(['restore', f, '--data-dir', tempDir('ans-bad-restore-')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/BACKUP_ERR_BAD_FILE.*(truncated|not JSON).*nothing was restored/);
  });
  it('a truncated file, an edited row, not gzip, not a backup: each refused, the store untouched', async () => {
    const t = text();
    const cases: [Buffer, RegExp][] = [
      [gzipSync(t.slice(0, t.lastIndexOf('{"sequences"'))), /truncated/],
      [gzipSync(t.replace('"active"', '"suspended"')), /checksum does not match/],
      [Buffer.from('hello\n'), /cannot decompress/],
      [gzipSync('{"hello":1}\n'), /not an ans-backup header/],
      [
        gzipSync(t.replace('"format":"ans-backup","version":1', '"format":"ans-backup","version":9')),
        /format version 9/,
      ],
      [gzipSync(`${t}{"more":1}\n`), /after the end marker/],
    ];
    for (const [body, message] of cases) {
      await expect(restore(body)).rejects.toMatchObject({ code: 'BACKUP_ERR_BAD_FILE', message });
      expect(await agentRows()).toBe(0);
    }
  });
  it('a store that is not empty, unless --force', async () => {
    const good = readFileSync(file);
    await restore(good);
    expect(await agentRows()).toBe(agents.length);
    await expect(restore(good)).rejects.toMatchObject({ code: 'BACKUP_ERR_NOT_EMPTY' });
    await restore(good, true);
    expect(await agentRows()).toBe(agents.length);
  });
});
