// The CLI is thin: each command parses its flags and calls its flow's plain `command(ctx, opts)`
// (commands.ts). This file holds the one error boundary that maps expected errors to exit codes:
// a PghaError carries its own; anything else reaching it is a bug (exit 70, with its stack).
import { Command, CommanderError } from 'commander';
import { EXIT, PghaError } from '../errors.js';
import { escapeControls } from '../terminal.js';
import { pghaVersion } from '../package-files.js';
import { BAD_INPUT_EXIT, registerCommands } from './commands.js';
import { fileURLToPath } from 'node:url';
import { setKeeperStart, takePassphraseFromEnv } from './context.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pgha')
    .description(
      'PostgreSQL high availability on your own machines: etcd, Patroni, HAProxy and pgBackRest, ' +
        'described by one YAML inventory, deployed and verified over SSH.\n\n' +
        'Start with `pgha init` (writes an inventory), then `pgha apply -i FILE`; `pgha <command> --help` explains each command.',
    )
    .version(pghaVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // Usage errors quote the arguments given: escaped like every other error text.
    .configureOutput({ writeErr: (s) => process.stderr.write(escapeControls(s, { keepNewlines: true })) });
  registerCommands(program);
  return program;
}

/** Runs the CLI and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  // The connection keeper `pgha status` starts (src/ssh/keeper.ts): no CLI, no passphrase.
  if (argv[2] === '__keeper' && argv[3]) {
    const { runKeeper } = await import('../ssh/keeper.js');
    // Exits at once: a connection to a host that went away would hold the process until TCP gives up.
    process.exit(await runKeeper(argv[3]));
  }
  takePassphraseFromEnv();
  // A keeper is this module run again (its self-run check below), whoever called main().
  setKeeperStart(fileURLToPath(import.meta.url));
  // A reader that went away (`pgha status | head -3`) ends the output, not with a crash's stack.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
    throw err;
  });
  const program = buildProgram();
  // `pgha` alone: the help, on stderr, as a usage error.
  if (argv.length <= 2) {
    program.outputHelp({ error: true });
    return EXIT.badInput;
  }
  // The command named (options come after it), for its own exit code of bad input.
  const command = argv.slice(2).find((a) => !a.startsWith('-'));
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    const code = reportError(err);
    return code === EXIT.badInput && command && BAD_INPUT_EXIT[command] !== undefined ? BAD_INPUT_EXIT[command] : code;
  }
}

/** The last line of defence: every error message may carry text from input (see terminal.ts). */
const say = (text: string) => process.stderr.write(`${escapeControls(text, { keepNewlines: true })}\n`);

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version output are not errors; usage mistakes are bad input.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      return EXIT.ok;
    }
    return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
  }
  if (err instanceof PghaError) {
    say(`pgha: ${err.message}`);
    for (const line of err.lines) say(line);
    return err.exitCode;
  }
  say('pgha: internal error (this is a bug, please report it):');
  say(err instanceof Error ? (err.stack ?? err.message) : String(err));
  return EXIT.bug;
}

// Run directly (tsx src/cli/main.ts ...) as well as through bin/pgha.js.
if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv);
}
