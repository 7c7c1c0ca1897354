/**
 * bench/gateway: the same load (wrk, 50 connections; autocannon when wrk is missing) against a
 * small upstream directly, through the ANS gateway (`/gw/<fqdn>/`, an authenticated agent, policy,
 * audit all on) and through nginx `proxy_pass` (Debian nginx-light) in one run. Prints
 * throughput, p50/p99, the ratios, then 1 GB streamed down and up through the gateway with the
 * gateway's peak RSS, and how soon after a revocation the gateway refuses that caller. One JSON line
 * per figure. A bare Node proxy (http server + undici Pool,
 * `ceiling.mjs`; also with node:http's Agent, and in 2 cluster workers) is measured too: the
 * floor any Node proxy pays on this machine. Each run also prints the CPU the server's process
 * tree spent per request (less disturbed by other load than throughput).
 *
 *   npx tsx bench/gateway/run.ts [--duration 10] [--connections 50] [--stream-mb 1024] [--workers 2]
 *
 * `--workers N` also measures the gateway with N data-plane worker processes (settings.dataPlane).
 * `--rate N` is the fixed request rate of the latency run (default 1000/s).
 * `--rate-limited` keeps the default per-caller rate limit (10k/s: part of the load gets 429s).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Pool, request } from 'undici';
import { agentToken, createKeyAndCsr } from '../../src/client/index.js';
import { card, client } from '../../test/helpers/api.js';
import { freePort } from '../../test/helpers/ports.js';
import { startServer, type RunningServer } from '../../test/helpers/server.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    'stream-mb': { type: 'string', default: '1024' },
    'skip-stream': { type: 'boolean', default: false },
    'gateway-only': { type: 'boolean', default: false },
    profile: { type: 'string' },
    workers: { type: 'string', default: '2' },
    'rate-limited': { type: 'boolean', default: false },
    rate: { type: 'string', default: '1000' },
    /** Callers revoked one after another to time how soon the gateway refuses them. */
    revocations: { type: 'string', default: '20' },
  },
});
const DURATION = Number(values.duration);
const CONNS = Number(values.connections);
const STREAM_BYTES = Number(values['stream-mb']) * 1024 * 1024;

const round = (v: number) => Math.round(v * 1000) / 1000;

function emit(bench: string, value: number, unit: string, extra: Record<string, unknown> = {}) {
  process.stdout.write(`${JSON.stringify({ bench, value: round(value), unit, ...extra })}\n`);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Load {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** CPU seconds (user + system) used so far by `pid` and every process below it. */
function cpuSeconds(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // Fields after the command's closing parenthesis: state ppid ... utime(12) stime(13).
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ');
      stats.set(Number(d), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      /* gone */
    }
  }
  let ticks = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    ticks += stats.get(p)?.ticks ?? 0;
    for (const [k, v] of stats) if (v.ppid === p) todo.push(k);
  }
  return ticks / 100; // USER_HZ
}

/**
 * wrk (or autocannon) against `url`. With `pid`, also the CPU that process tree spent per
 * request during the measured run: a figure that other load on the machine disturbs less than
 * throughput does.
 */
async function load(
  url: string,
  headers: Record<string, string> = {},
  conns = CONNS,
  pid?: number,
): Promise<Load & { cpuUsPerReq?: number }> {
  if (existsSync('/usr/bin/wrk')) {
    const args = ['-t', '1', '-c', String(conns), '-d', `${DURATION}s`, '--latency'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    args.push(url);
    // warm-up
    spawnSync('wrk', ['-t', '1', '-c', String(conns), '-d', '2s', ...args.slice(6)], { encoding: 'utf8' });
    const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
    const r = spawnSync('wrk', args, { encoding: 'utf8' });
    const cpu = pid === undefined ? undefined : cpuSeconds(pid) - cpu0;
    const out = r.stdout;
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
    const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
    const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
    return {
      rps,
      p50ms: p50,
      p99ms: p99,
      errors,
      ...(cpu === undefined ? {} : { cpuUsPerReq: (cpu / requests) * 1e6 }),
    };
  }
  // autocannon ships without types; only the fields read here are described.
  type Result = {
    requests: { average: number };
    latency: { p50: number; p99: number };
    errors: number;
    non2xx: number;
  };
  const autocannon = ((await import('autocannon' as string)) as { default: (o: object) => Promise<Result> }).default;
  const res = await autocannon({ url, connections: conns, duration: DURATION, headers });
  return { rps: res.requests.average, p50ms: res.latency.p50, p99ms: res.latency.p99, errors: res.errors + res.non2xx };
}

/**
 * The gateway's answers by status so far (its own `ans_gateway_requests_total`), and the call
 * records its audit queue dropped (full: the batched writer fell behind).
 */
async function statusCounts(base: string): Promise<{ byStatus: Record<string, number>; auditDropped: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const byStatus: Record<string, number> = {};
  for (const m of text.matchAll(/^ans_gateway_requests_total\{status="(\d+)"\} (\d+)/gm))
    byStatus[m[1]!] = Number(m[2]);
  return { byStatus, auditDropped: Number(/^ans_gateway_audit_dropped (\d+)/m.exec(text)?.[1] ?? NaN) };
}

/**
 * `rate` requests a second for `seconds`, open loop (each sent on schedule, whatever the earlier
 * ones are doing), on a pool of 16 connections: latency without queueing in the load generator
 * or the server, unlike a saturating run. p50/p99 of send-to-last-byte, in ms.
 */
async function fixedRate(
  url: string,
  headers: Record<string, string>,
  rate: number,
  seconds: number,
): Promise<{ p50ms: number; p99ms: number; errors: number }> {
  const pool = new Pool(new URL(url).origin, { connections: 16 });
  const path = new URL(url).pathname;
  const lat: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const one = async () => {
    const t0 = performance.now();
    try {
      const r = await pool.request({ path, method: 'GET', headers });
      await r.body.dump();
      if (r.statusCode !== 200) errors++;
      lat.push(performance.now() - t0);
    } catch {
      errors++;
    }
  };
  const start = performance.now();
  let sent = 0;
  while (sent < rate * seconds) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; sent < due && sent < rate * seconds; sent++) inflight.push(one());
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  await pool.close();
  lat.sort((a, b) => a - b);
  return { p50ms: lat[Math.floor(lat.length / 2)] ?? NaN, p99ms: lat[Math.floor(lat.length * 0.99)] ?? NaN, errors };
}

function spawnLine(cmd: string, args: string[]): Promise<{ proc: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.stdout!.once('data', (d: Buffer) => resolve({ proc, line: d.toString().trim() }));
    proc.once('exit', (c) => reject(new Error(`${cmd} exited ${c}`)));
  });
}

async function nginx(upstreamPort: number): Promise<{ port: number; pid: number; stop: () => void } | undefined> {
  if (!existsSync('/usr/sbin/nginx')) {
    process.stderr.write('nginx not installed: skipping the nginx comparison (apt-get install -y nginx-light)\n');
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ans-nginx-'));
  const port = await freePort();
  const conf = `
worker_processes auto;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream agent { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://agent;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const proc = spawn('/usr/sbin/nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;'], {
    stdio: 'inherit',
  });
  for (let i = 0; i < 50; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { port, pid: proc.pid!, stop: () => proc.kill('SIGTERM') };
}

/** With --profile DIR, `ans serve` runs under --cpu-prof (NODE_OPTIONS may not carry it); the profile is written on exit. */
async function main(): Promise<void> {
  emit('load_average', loadavg()[0]!, '1 min', { at: 'start' });
  const up = await spawnLine(process.execPath, [join(import.meta.dirname, 'upstream.mjs')]);
  const upPort = Number(up.line);
  const upUrl = `http://127.0.0.1:${upPort}`;
  let s: RunningServer | undefined;
  let ngx: Awaited<ReturnType<typeof nginx>>;
  try {
    s = await startServer(values.profile ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] } : {});
    const api = client(s.url);
    const enrol = async (label: string, url: string) => {
      const { keyPem, csrPem } = await createKeyAndCsr(`${label}.agents.internal`);
      const r = await api.post<{ id: string }>('/v1/agents', {
        card: card(label, { endpoints: [{ protocol: 'http', url }] }),
        csr: csrPem,
      });
      const a = await api.post<{ certificate: string; chain: string }>(
        `/v1/agents/${r.body.id}/approve`,
        {},
        s!.adminToken,
      );
      return { id: r.body.id, keyPem, certificatePem: a.body.certificate, chainPem: a.body.chain };
    };
    await enrol('bench', upUrl);
    const caller = await enrol('loadgen', 'http://127.0.0.1:9/');
    const token = await agentToken({
      agentId: caller.id,
      zone: 'agents.internal',
      keyPem: caller.keyPem,
      certificatePem: caller.certificatePem,
      chainPem: caller.chainPem,
      lifetimeSeconds: 300,
    });
    const auth = { authorization: `Bearer ${token}` };
    const gwUrl = `${s.url}/gw/bench.agents.internal/`;
    // One caller makes all the load: the default per-caller rate (600,000/min = 10k/s) would
    // answer 429 to part of it and count those cheap refusals as throughput. The limiter still
    // runs on every call; it just does not refuse.
    if (!values['rate-limited'])
      await api.put('/v1/gateway/settings', { ratePerMinute: 100_000_000, rateBurst: 1_000_000 }, s.adminToken);
    const check = await fetch(gwUrl, { headers: auth });
    if (check.status !== 200) throw new Error(`gateway answers ${check.status}: ${await check.text()}`);

    const results: Record<string, Load & { cpuUsPerReq?: number }> = {};
    if (!values['gateway-only']) results['direct'] = await load(`${upUrl}/`, {}, CONNS, up.proc.pid);
    results['gateway'] = await load(gwUrl, auth, CONNS, s.proc.pid);
    const answers = await statusCounts(s.url);
    emit(
      'gateway.gateway.answers',
      Object.values(answers.byStatus).reduce((a, b) => a + b, 0),
      'calls',
      answers,
    );
    // The same gateway with its data plane in worker processes on their own port.
    const planePort = await freePort();
    const workers = Number(values.workers);
    if (workers > 0) {
      await api.put('/v1/gateway/settings', { dataPlane: { port: planePort, workers } }, s.adminToken);
      for (let i = 0; i < 100; i++) {
        const ok = await fetch(`http://127.0.0.1:${planePort}/gw/bench.agents.internal/`, {
          headers: auth,
          signal: AbortSignal.timeout(1000),
        }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      results[`gateway-${workers}proc`] = await load(
        `http://127.0.0.1:${planePort}/gw/bench.agents.internal/`,
        auth,
        CONNS,
        s.proc.pid,
      );
      await api.put('/v1/gateway/settings', { dataPlane: null }, s.adminToken);
    }
    ngx = values['gateway-only'] ? undefined : await nginx(upPort);
    if (ngx) results['nginx'] = await load(`http://127.0.0.1:${ngx.port}/`, {}, CONNS, ngx.pid);
    if (!values['gateway-only']) {
      // The floor for any Node proxy here: a bare http server + undici Pool, nothing else.
      const floorPort = await freePort();
      const floor = await spawnLine(process.execPath, [
        join(import.meta.dirname, 'ceiling.mjs'),
        String(upPort),
        String(floorPort),
      ]);
      try {
        results['node-bare'] = await load(`http://127.0.0.1:${floorPort}/`, {}, CONNS, floor.proc.pid);
        const fr = await fixedRate(`http://127.0.0.1:${floorPort}/`, {}, Number(values.rate), Math.min(DURATION, 5));
        emit('gateway.node-bare.p50_fixed_rate', fr.p50ms, 'ms', { rate: Number(values.rate), p99: round(fr.p99ms) });
      } finally {
        floor.proc.kill();
      }
      const agentPort = await freePort();
      const viaAgent = await spawnLine(process.execPath, [
        join(import.meta.dirname, 'ceiling.mjs'),
        String(upPort),
        String(agentPort),
        'agent',
      ]);
      try {
        results['node-bare-agent'] = await load(`http://127.0.0.1:${agentPort}/`, {}, CONNS, viaAgent.proc.pid);
      } finally {
        viaAgent.proc.kill();
      }
      const twoPort = await freePort();
      const two = await spawnLine(process.execPath, [
        join(import.meta.dirname, 'ceiling-cluster.mjs'),
        String(upPort),
        String(twoPort),
        '2',
      ]);
      try {
        results['node-bare-2proc'] = await load(`http://127.0.0.1:${twoPort}/`, {}, CONNS, two.proc.pid);
      } finally {
        two.proc.kill();
      }
    }
    for (const [k, r] of Object.entries(results)) {
      emit(`gateway.${k}.throughput`, r.rps, 'req/s', { connections: CONNS, errors: r.errors });
      emit(`gateway.${k}.p50`, r.p50ms, 'ms');
      emit(`gateway.${k}.p99`, r.p99ms, 'ms');
      if (r.cpuUsPerReq !== undefined) emit(`gateway.${k}.cpu_per_request`, r.cpuUsPerReq, 'us');
    }
    const g = results['gateway']!;
    if (results['nginx'])
      emit('gateway.throughput_vs_nginx', g.rps / results['nginx'].rps, 'ratio', { target: '>= 0.7' });
    if (results['node-bare']) emit('gateway.throughput_vs_node_bare', g.rps / results['node-bare'].rps, 'ratio');
    const gw2 = results[`gateway-${values.workers}proc`];
    if (gw2 && results['nginx'])
      emit(`gateway-${values.workers}proc.throughput_vs_nginx`, gw2.rps / results['nginx'].rps, 'ratio', {
        target: '>= 0.7',
      });
    if (results['direct']) {
      emit('gateway.throughput_vs_direct', g.rps / results['direct'].rps, 'ratio');
      emit('gateway.added_p50', g.p50ms - results['direct'].p50ms, 'ms', { target: '<= 1' });
      if (results['nginx']) emit('nginx.added_p50', results['nginx'].p50ms - results['direct'].p50ms, 'ms');
      // At 50 connections p50 is mostly queueing (connections / throughput); one connection
      // shows the latency the gateway itself adds to a call.
      const d1 = await load(`${upUrl}/`, {}, 1);
      const g1 = await load(gwUrl, auth, 1);
      emit('gateway.direct.p50_1conn', d1.p50ms, 'ms');
      emit('gateway.gateway.p50_1conn', g1.p50ms, 'ms');
      emit('gateway.added_p50_1conn', g1.p50ms - d1.p50ms, 'ms', { target: '<= 1' });
      if (ngx) {
        const n1 = await load(`http://127.0.0.1:${ngx.port}/`, {}, 1);
        emit('nginx.added_p50_1conn', n1.p50ms - d1.p50ms, 'ms');
      }
      // A moderate fixed rate (no saturation): what a call pays for going through the proxy.
      const rate = Number(values.rate);
      const secs = Math.min(DURATION, 5);
      const dr = await fixedRate(`${upUrl}/`, {}, rate, secs);
      const gr = await fixedRate(gwUrl, auth, rate, secs);
      emit('gateway.direct.p50_fixed_rate', dr.p50ms, 'ms', { rate, p99: round(dr.p99ms), errors: dr.errors });
      emit('gateway.gateway.p50_fixed_rate', gr.p50ms, 'ms', { rate, p99: round(gr.p99ms), errors: gr.errors });
      emit('gateway.added_p50_fixed_rate', gr.p50ms - dr.p50ms, 'ms', { rate, target: '<= 1' });
      if (ngx) {
        const nr = await fixedRate(`http://127.0.0.1:${ngx.port}/`, {}, rate, secs);
        emit('nginx.added_p50_fixed_rate', nr.p50ms - dr.p50ms, 'ms', { rate, p99: round(nr.p99ms) });
      }
    }

    if (!values['skip-stream']) {
      // A keep-alive socket idle through the load runs may have been closed by the server
      // (its 30 s connection timeout): one retry on a fresh connection.
      const put = () => api.put('/v1/gateway/settings', { bodyLimit: STREAM_BYTES * 2 }, s!.adminToken);
      await put().catch(put);
      const pid = s.proc.pid!;
      const base = rssMb(pid);
      let peak = base;
      const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
      let t0 = performance.now();
      const down = await request(`${gwUrl}big?bytes=${STREAM_BYTES}`, { headers: auth });
      let got = 0;
      for await (const c of down.body) got += (c as Buffer).length;
      const downS = (performance.now() - t0) / 1000;
      if (got !== STREAM_BYTES) throw new Error(`streamed ${got} of ${STREAM_BYTES} bytes`);
      emit('gateway.stream_down', STREAM_BYTES / 1024 / 1024 / downS, 'MiB/s', { bytes: STREAM_BYTES });
      const peakDown = peak;
      t0 = performance.now();
      const chunk = Buffer.alloc(64 * 1024, 121);
      const body = Readable.from(
        (function* () {
          for (let sent = 0; sent < STREAM_BYTES; sent += chunk.length) yield chunk;
        })(),
      );
      const upr = await request(`${gwUrl}sink`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        body,
      });
      const echoed = Number(await upr.body.text());
      const upS = (performance.now() - t0) / 1000;
      clearInterval(timer);
      if (upr.statusCode !== 200 || echoed !== STREAM_BYTES)
        throw new Error(`upload: ${upr.statusCode}, upstream saw ${echoed} bytes`);
      emit('gateway.stream_up', STREAM_BYTES / 1024 / 1024 / upS, 'MiB/s', { bytes: STREAM_BYTES });
      emit('gateway.stream_rss_growth', peak - base, 'MiB', {
        baseline: Math.round(base),
        peakDown: Math.round(peakDown),
        peak: Math.round(peak),
      });
    }
    // The "a revoked caller is refused within a second": from the revoke answer to the
    // first 401 for a token the gateway had verified and cached.
    const lags: number[] = [];
    for (let i = 0; i < Number(values.revocations); i++) {
      const c = await enrol(`revokee${i}`, 'http://127.0.0.1:9/');
      const t = await agentToken({
        agentId: c.id,
        zone: 'agents.internal',
        keyPem: c.keyPem,
        certificatePem: c.certificatePem,
        chainPem: c.chainPem,
      });
      const headers = { authorization: `Bearer ${t}` };
      if ((await fetch(gwUrl, { headers })).status !== 200) throw new Error('revokee was not let through first');
      const rv = await api.post(`/v1/agents/${c.id}/revoke`, { reason: 'keyCompromise' }, s.adminToken);
      if (rv.status !== 200) throw new Error(`revoke: ${rv.status}`);
      const t0 = performance.now();
      while ((await fetch(gwUrl, { headers })).status !== 401)
        if (performance.now() - t0 > 10_000) throw new Error('a revoked caller was still let through after 10 s');
      lags.push(performance.now() - t0);
    }
    if (lags.length) {
      lags.sort((a, b) => a - b);
      emit('gateway.revoked_refused_after.p50', lags[Math.floor(lags.length / 2)]!, 'ms', { n: lags.length });
      emit('gateway.revoked_refused_after.max', lags.at(-1)!, 'ms', { target: '<= 1000' });
    }
    emit('gateway.audit_dropped', (await statusCounts(s.url)).auditDropped, 'calls', { at: 'end' });
    emit('load_average', loadavg()[0]!, '1 min', { at: 'end' });
  } catch (e) {
    if (s)
      process.stderr.write(
        `ans serve (exit ${String(s.proc.exitCode)}) last log lines:\n${s.logs.slice(-30).join('\n')}\n`,
      );
    throw e;
  } finally {
    ngx?.stop();
    await s?.stop();
    up.proc.kill();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
