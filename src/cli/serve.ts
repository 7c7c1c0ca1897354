import { Command, Option } from 'commander';
import { buildApp } from '../app.js';
import { SERVE_OPTIONS, buildConfig, ConfigError, type RawOptions } from '../config/index.js';
import { loadDemo } from '../demo.js';

export function serveCommand(): Command {
  const cmd = new Command('serve').description('run ANS: DNS, CA, registry, resolve and gateway in one process');
  for (const s of SERVE_OPTIONS) {
    const envName = `ANS_${s.flag.toUpperCase().replace(/-/g, '_')}`;
    const flags = s.arg ? `--${s.flag} <${s.arg}>` : `--${s.flag}`;
    const o = new Option(
      flags,
      `${s.help} [env ${envName}${s.env ? ` or ${s.env}` : ''}]${s.default ? ` (default: ${s.default})` : ''}`,
    );
    if (s.repeatable) o.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(o);
  }
  cmd.action(async (raw: RawOptions) => {
    let config;
    try {
      config = buildConfig(raw);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`ans serve: ${e.message}\n`);
        process.exit(2);
      }
      throw e;
    }
    const app = await buildApp({ config });
    const where = await app.start();
    app.log.info(
      {
        http: where.httpUrl,
        dns: `${config.host}:${where.dnsPort}`,
        zone: config.zone,
        dataDir: config.dataDir,
        store: app.db.kind,
      },
      'ANS is up',
    );
    if (app.bootstrapToken) {
      process.stdout.write(
        `\nAdmin token (shown once; a copy is in ${config.dataDir}/admin.token, mode 0600):\n  ${app.bootstrapToken}\n\n`,
      );
    }
    if (config.demo) {
      const n = await loadDemo(app);
      app.log.info({ agents: n }, 'demo agents loaded');
    }
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      app.stop().then(
        () => process.exit(0),
        (e: unknown) => {
          app.log.error({ err: e }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  return cmd;
}
