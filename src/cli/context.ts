// The command contract: the CLI builds one CommandContext per run and calls the flow's plain
// `command(ctx, opts)`, which returns the exit code. The context loads the inventory once, opens
// the connections (all hosts, or tolerant of unreachable ones) and closes them afterwards, and
// provides output, the terminal and confirmation. Heavy modules load only when asked for, so
// `pgha --version` and `pgha validate` stay fast.
import { EXIT, InputError, PghaError } from '../errors.js';
import type { Inventory } from '../inventory/index.js';
import { Masker } from '../ssh/mask.js';
import type { CommandContext, Confirmation } from '../flows/context.js';

export type { CommandContext, Confirmation } from '../flows/context.js';

export interface ContextOptions {
  inventoryFile?: string;
  out?: (text: string) => void;
  err?: (text: string) => void;
  tty?: boolean;
  color?: boolean;
}

/** A context and its cleanup (the CLI calls close() after the command, whatever happened). */
export function createContext(o: ContextOptions = {}): CommandContext & { close(): Promise<void> } {
  const write = o.out ?? ((t: string) => void process.stdout.write(t));
  const writeErr = o.err ?? ((t: string) => void process.stderr.write(t));
  // The one secrets masker of the command's output, set once the secrets are known.
  let masker: Masker | undefined;
  const out = (t: string) => write(masker ? masker.mask(t) : t);
  const err = (t: string) => writeErr(masker ? masker.mask(t) : t);
  const tty = o.tty ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
  let inv: Promise<Inventory> | undefined;
  const closers: (() => Promise<void>)[] = [];
  const file = () => {
    if (!o.inventoryFile) throw new InputError('no inventory given: use -i FILE');
    return o.inventoryFile;
  };
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
    color: o.color ?? process.stdout.isTTY === true,
    inventory() {
      inv ??= import('../inventory/index.js').then(async (m) => {
        const loaded = await m.loadInventory(file());
        masker = new Masker(m.secretValues(loaded.secrets));
        return loaded;
      });
      return inv;
    },
    async session(opts) {
      const [{ openSession }, i] = await Promise.all([import('../session/session.js'), this.inventory()]);
      const s = await openSession(i, opts);
      closers.push(() => s.close());
      return s;
    },
    async reach(opts) {
      const [{ connectEach }, i] = await Promise.all([import('../session/session.js'), this.inventory()]);
      const r = connectEach(i, opts);
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
