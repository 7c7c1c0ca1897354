/** Starts Knot DNS as a secondary of our zone (own rundir/storage, current user). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Knot {
  port: number;
  proc: ChildProcess;
  dir: string;
  stop(): Promise<void>;
  log(): string;
}

export function startKnot(opts: {
  port: number;
  primaryPort: number;
  zone: string;
  key?: { name: string; secret: string };
  threads?: number;
}): Knot {
  const dir = mkdtempSync(join(tmpdir(), 'ans-knot-'));
  const k = opts.key;
  const conf = `
server:
    rundir: "${dir}"
    pidfile: "${dir}/knot.pid"
    listen: 127.0.0.1@${opts.port}
${opts.threads ? `    udp-workers: ${opts.threads}\n    tcp-workers: 1\n    background-workers: 1\n` : ''}
control:
    listen: "${dir}/knot.sock"
database:
    storage: "${dir}"
log:
  - target: stderr
    any: info
${k ? `key:\n  - id: ${k.name}\n    algorithm: hmac-sha256\n    secret: ${k.secret}\n` : ''}
remote:
  - id: primary
    address: 127.0.0.1@${opts.primaryPort}
${k ? `    key: ${k.name}\n` : ''}
acl:
  - id: from_primary
    address: 127.0.0.1
${k ? `    key: ${k.name}\n` : ''}    action: notify
zone:
  - domain: ${opts.zone}
    master: primary
    acl: from_primary
    storage: "${dir}"
    file: "${dir}/%s.zone"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
`;
  writeFileSync(join(dir, 'knot.conf'), conf);
  const proc = spawn('knotd', ['-c', join(dir, 'knot.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
    if (log.length > 1 << 20) log = log.slice(-(1 << 19));
  });
  return {
    port: opts.port,
    proc,
    dir,
    log: () => log,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) {
          rmSync(dir, { recursive: true, force: true });
          resolve();
          return;
        }
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        proc.once('exit', () => {
          clearTimeout(t);
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        proc.kill('SIGTERM');
      }),
  };
}
