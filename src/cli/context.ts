// The command contract: the CLI builds one CommandContext per run and calls the flow's plain
// `command(ctx, opts)`, which returns the exit code. The context loads the inventory once, opens
// the connections (all hosts, or tolerant of unreachable ones) and closes them afterwards, and
// provides output (also into the run log), the terminal, colours, SSH passphrases and
// confirmation. Heavy modules load only when asked for, so `pgha --version` and `pgha validate`
// stay fast.
import { existsSync } from 'node:fs';
import { $ as colors } from 'kleur/colors';
import { EXIT, InputError, PghaError } from '../errors.js';
import type { Inventory } from '../inventory/index.js';
import { Masker } from '../ssh/mask.js';
import { keeperSocketPath, type KeeperPlace } from '../ssh/keeper-protocol.js';
import { pghaVersion } from '../package-files.js';
import type { CommandContext, Confirmation } from '../flows/context.js';
import type { PassphraseSource } from '../ssh/auth.js';
import type { RunLog } from './runlog.js';
import { DEFAULT_INVENTORY, INVENTORY_ENV, inventoryNote, locateInventory } from './inventory-path.js';

export { DEFAULT_INVENTORY, INVENTORY_ENV } from './inventory-path.js';
/** A passphrase for encrypted SSH keys, read once at startup and removed from the environment. */
export const PASSPHRASE_ENV = 'PGHA_SSH_PASSPHRASE';

let passphraseFromEnv: string | undefined;

/** Takes PGHA_SSH_PASSPHRASE out of the environment (so no child process inherits it); main calls this first. */
export function takePassphraseFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  passphraseFromEnv = env[PASSPHRASE_ENV];
  delete env[PASSPHRASE_ENV];
}

let keeperStart: string[] | undefined;

/**
 * How to start a connection keeper: the CLI's own entry (main.ts, or the bundle's main.js), set by
 * main(). Without it (a flow run in-process, as tests do) commands connect by themselves.
 */
export function setKeeperStart(entry: string): void {
  // Node's loader flags only (a TypeScript loader in development), never e.g. --test.
  const loaders: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (/^--(import|require|loader|experimental-loader)=/.test(argv[i])) loaders.push(argv[i]);
    else if (/^--(import|require|loader|experimental-loader)$/.test(argv[i]) && i + 1 < argv.length) loaders.push(argv[i], argv[++i]);
  }
  keeperStart = [process.execPath, ...loaders, entry];
}

/** Which inventory a command uses: -i, else $PGHA_INVENTORY, else ./inventory.yml if it exists; and why. */
export function resolveInventory(given: string | undefined, env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): { file: string; from?: string } {
  const r = locateInventory(given, env, exists);
  if (!r) throw new InputError(`no inventory: give -i FILE, set ${INVENTORY_ENV}, or run pgha where ./${DEFAULT_INVENTORY} is`);
  return r;
}

export type { CommandContext, Confirmation } from '../flows/context.js';

export interface ContextOptions {
  inventoryFile?: string;
  out?: (text: string) => void;
  err?: (text: string) => void;
  tty?: boolean;
  color?: boolean;
  log?: RunLog;
  env?: NodeJS.ProcessEnv;
  /** Default: PGHA_SSH_PASSPHRASE as taken at startup. */
  passphrase?: string;
  /** Where a relative inventory path is (default: this process's directory). */
  cwd?: string;
  /** The connection keeper to use (default: the one this CLI starts, see setKeeperStart). */
  keeper?: KeeperPlace;
}

/** Passphrases for encrypted keys: the one given in the environment, else asked on the terminal (once per key file). */
function passphraseSource(given: string | undefined, tty: boolean, onGiven: (p: string) => void): PassphraseSource {
  const asked = new Map<string, Promise<string | undefined>>();
  return (path, retry) => {
    if (given !== undefined) return Promise.resolve(retry ? undefined : given);
    if (!tty) return Promise.resolve(undefined);
    if (!asked.has(path) || retry) {
      asked.set(
        path,
        (async () => {
          const { password } = await import('@inquirer/prompts');
          try {
            const p = await password({ message: `${retry ? `${retry}. ` : ''}Passphrase for ${path}`, mask: true }, { output: process.stderr });
            onGiven(p);
            return p;
          } catch (e) {
            if (e instanceof Error && e.name === 'ExitPromptError') throw new PghaError('interrupted: nothing was changed', EXIT.interrupted);
            throw e;
          }
        })(),
      );
    }
    return asked.get(path)!;
  };
}

/** A context and its cleanup (the CLI calls close() after the command, whatever happened). */
export function createContext(o: ContextOptions = {}): CommandContext & { close(): Promise<void> } {
  const write = o.out ?? ((t: string) => void process.stdout.write(t));
  const writeErr = o.err ?? ((t: string) => void process.stderr.write(t));
  const log = o.log;
  // The one secrets masker of the command's output, set once the secrets are known.
  let masker: Masker | undefined;
  const mask = (t: string) => (masker ? masker.mask(t) : t);
  const out = (t: string) => {
    write(mask(t));
    log?.output('out', t);
  };
  const err = (t: string) => {
    writeErr(mask(t));
    log?.output('err', t);
  };
  const tty = o.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
  let inv: Promise<Inventory> | undefined;
  const closers: (() => Promise<void>)[] = [];
  let resolved: string | undefined;
  const file = () => {
    if (resolved === undefined) {
      const r = resolveInventory(o.inventoryFile, o.env ?? process.env);
      if (r.from) err(inventoryNote(r));
      resolved = r.file;
    }
    return resolved;
  };
  const given = o.passphrase ?? passphraseFromEnv;
  if (given !== undefined) log?.addSecrets([given]);
  const passphrase = passphraseSource(given, tty, (p) => {
    log?.addSecrets([p]);
    masker?.add(p);
  });
  const needsConfirmation = (opts: Confirmation) => {
    if (opts.yes) return false;
    if (!tty) throw new InputError(opts.noTerminal);
    return true;
  };
  return {
    get inventoryFile() {
      return file();
    },
    out,
    err,
    tty,
    color: o.color ?? Boolean(colors.enabled), // undefined when stdout is no terminal
    log,
    keeper: () => {
      if (o.keeper) return o.keeper;
      const socketPath = keeperStart && keeperSocketPath(pghaVersion(), o.env ?? process.env);
      return socketPath ? { socketPath, start: keeperStart! } : undefined;
    },
    sessionOptions: () => {
      log?.begin();
      return { passphrase, log };
    },
    inventory(opts = {}) {
      inv ??= import('../inventory/index.js').then(async (m) => {
        const loaded = await m.loadInventory(file(), { secrets: opts.secretsOptional ? 'optional' : true, cwd: o.cwd });
        const secrets = m.secretValues(loaded.secrets);
        masker = new Masker([...secrets, ...(given !== undefined ? [given] : [])]);
        log?.addSecrets(secrets);
        return loaded;
      });
      return inv;
    },
    async session(opts) {
      const [{ openSession }, i] = await Promise.all([import('../session/session.js'), this.inventory()]);
      log?.begin();
      const s = await openSession(i, { passphrase, log, ...opts });
      closers.push(() => s.close());
      return s;
    },
    async reach(opts) {
      const [{ connectEach }, i] = await Promise.all([import('../session/session.js'), this.inventory()]);
      log?.begin();
      const r = connectEach(i, { passphrase, log, ...opts });
      closers.push(() => r.close());
      return r;
    },
    needsConfirmation,
    async confirm(question, opts) {
      if (!needsConfirmation(opts)) return;
      const { confirm } = await import('@inquirer/prompts');
      let ok: boolean;
      try {
        ok = await confirm({ message: question, default: false });
      } catch (e) {
        if (e instanceof Error && e.name === 'ExitPromptError') throw new PghaError('interrupted: nothing was changed', EXIT.interrupted);
        throw e;
      }
      if (!ok) throw new PghaError('not confirmed: nothing was changed');
    },
    async close() {
      await Promise.all(closers.splice(0).map((c) => c()));
    },
  };
}
