// The contract every flow is written against: a flow is a plain `command(ctx, opts)` returning
// its exit code, and gets everything that touches the operator or the hosts from `ctx`. The CLI
// (src/cli/context.ts) implements it.
import type { Inventory } from '../inventory/index.js';
import type { LogSink } from '../engine/reporter.js';
import type { Reach, Session, SessionOptions } from '../session/session.js';
import type { KeeperPlace } from '../ssh/keeper-protocol.js';

export interface CommandContext {
  /** The inventory file: -i, else $PGHA_INVENTORY, else ./inventory.yml (said on stderr when not -i). */
  readonly inventoryFile: string;
  /** Standard output; once the inventory is loaded, every secret in it is masked (hosts' answers and errors are shown as they came). */
  out(text: string): void;
  err(text: string): void;
  /** stdin and stdout are both terminals (prompts, screen refreshes). */
  readonly tty: boolean;
  /** Colours in the output: stdout is a terminal, or FORCE_COLOR; never with NO_COLOR (kleur decides). */
  readonly color: boolean;
  /** What a command passes to sessions it opens itself (passphrases, the run log). */
  sessionOptions(): Pick<SessionOptions, 'passphrase' | 'log'>;
  /** Where the connection keeper is and how to start it (status keeps its connections); undefined: connect afresh. */
  keeper?(): KeeperPlace | undefined;
  /** The run log, when this command keeps one. */
  readonly log?: LogSink;
  /**
   * The inventory, loaded and validated once (bad input: InputError, exit 2). `secretsOptional`:
   * a missing secrets file is no problem (validate, render: `inv.secretsMissing`).
   */
  inventory(opts?: { secretsOptional?: boolean }): Promise<Inventory>;
  /** Every host connected, all or nothing (closed after the command). */
  session(opts?: SessionOptions): Promise<Session>;
  /** Every host connected on its own; unreachable ones are recorded (closed after the command). */
  reach(opts?: SessionOptions): Promise<Reach>;
  /**
   * A yes/no question. With `yes` it is not asked; without a terminal it is refused (exit 2) with
   * `noTerminal`, which names the flag; "no" ends the command with nothing changed (exit 1), Ctrl+C with 130.
   */
  confirm(question: string, opts: Confirmation): Promise<void>;
  /** Whether confirm() would have to ask (throws its refusal without a terminal): checked before any host is contacted. */
  needsConfirmation(opts: Confirmation): boolean;
}

export interface Confirmation {
  yes?: boolean;
  /** The refusal without a terminal, e.g. "switchover ...: add --yes to go ahead without asking". */
  noTerminal: string;
}
