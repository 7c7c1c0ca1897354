import { Command, CommanderError } from 'commander';
import { VERSION } from '../app.js';
import { adminCommand } from './admin.js';
import { agentCommand } from './agent.js';
import { backupCommand, restoreCommand } from './backup.js';
import { CliError } from './client.js';
import { fedCommand } from './fed.js';
import { caCommand, dnsCommand } from './ops.js';
import { resolveCommand } from './resolve.js';
import { serveCommand } from './serve.js';

const program = new Command('ans')
  .description('ANS — Agent Name Service: DNS, CA, semantic registry and gateway for AI agents')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();
program.addCommand(serveCommand());
program.addCommand(adminCommand());
program.addCommand(agentCommand());
program.addCommand(resolveCommand());
program.addCommand(dnsCommand());
program.addCommand(caCommand());
program.addCommand(fedCommand());
program.addCommand(backupCommand());
program.addCommand(restoreCommand());

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
  } else if (e instanceof CliError) {
    process.stderr.write(`ans: ${e.message}\n`);
    process.exitCode = 1;
  } else {
    // Stack traces are for developers: ANS_DEBUG=1 shows them.
    const err = e as Error;
    process.stderr.write(`ans: ${process.env['ANS_DEBUG'] ? (err.stack ?? String(e)) : (err.message ?? String(e))}\n`);
    process.exitCode = 1;
  }
}
