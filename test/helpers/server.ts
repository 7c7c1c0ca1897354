import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './ports.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const ANS_BIN = join(ROOT, 'bin/ans.mjs');

export interface RunningServer {
  url: string;
  httpPort: number;
  dnsPort: number;
  dataDir: string;
  adminToken: string;
  proc: ChildProcess;
  logs: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = 'ans-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts a real `ans serve` as a child process on free ports and waits for its 'ANS is up'
 * log line. Uses the cheap hash embedder unless the caller asks otherwise.
 */
export async function startServer(
  opts: { dataDir?: string; args?: string[]; env?: NodeJS.ProcessEnv; nodeArgs?: string[]; httpPort?: number } = {},
): Promise<RunningServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const httpPort = opts.httpPort ?? (await freePort());
  const dnsPort = await freePort();
  const args = [
    ...(opts.nodeArgs ?? []),
    ANS_BIN,
    'serve',
    '--data-dir',
    dataDir,
    '--http-port',
    String(httpPort),
    '--dns-port',
    String(dnsPort),
    ...(opts.args ?? []),
  ];
  if (!args.includes('--embedder')) args.push('--embedder', 'hash');
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ANS_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error(`ans serve did not come up:\n${logs.join('\n')}`));
    }, 90_000);
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        if (line.includes('"ANS is up"')) {
          clearTimeout(timer);
          res();
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`ans serve exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  return {
    url: `http://127.0.0.1:${httpPort}`,
    httpPort,
    dnsPort,
    dataDir,
    // A second process on a shared PostgreSQL has no token file of its own.
    adminToken: existsSync(join(dataDir, 'admin.token'))
      ? readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()
      : '',
    proc,
    logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

/** Runs the `ans` CLI and returns its exit code and output. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [ANS_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => res({ code, stdout, stderr }));
  });
}
