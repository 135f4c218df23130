// The one interface every step talks to a host through. SSH is the real implementation
// (ssh.ts); LocalConnection (local.ts) and test fakes stand behind the same interface.
// The shared part, ShellConnection, turns a Command into shell text (sudo, other user),
// echoes it masked, enforces the exit-code check and implements the file helpers on top
// of run(), so every connector behaves the same.
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { HostError } from '../errors.js';
import { Masker } from './mask.js';
import { Command, commandText, shellQuote } from './quote.js';
import type { HostTarget } from './target.js';

export interface RunOptions {
  /** Run through `sudo -n` (as root). Default: the target's `sudo` setting. Never used when connected as root. */
  sudo?: boolean;
  /** Run as this user (`sudo -n -u USER`), e.g. postgres. */
  user?: string;
  /** Sent to the command's standard input (the way to pass secrets and file contents). */
  stdin?: string;
  /** Default: the target's commandTimeoutMs. The channel is killed when it runs out. */
  timeoutMs?: number;
  /** Default true: a non-zero exit throws a CommandError. false: the caller reads `code`. */
  check?: boolean;
  /** Shown instead of the command text in verbose output and errors (for long internal scripts). */
  display?: string;
  /** The output is a file's content (it may hold secrets): never passed to onResult. */
  quietOutput?: boolean;
}

/** One command of a `runEach` batch. */
export interface EachCommand {
  cmd: Command;
  /** Run as this user; default root (the batch runs escalated). */
  user?: string;
  /** As RunOptions.check: default true, a non-zero exit makes this command's result a CommandError. */
  check?: boolean;
  /** As RunOptions.display. */
  display?: string;
  /** This command's own limit (coreutils' timeout), so that one that hangs leaves the rest their answers. */
  timeoutMs?: number;
}

/** What onResult gets about a command that ran (output as it came, unmasked: the receiver masks). */
export interface CommandOutcome {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** The output is a file's content and must not be kept. */
  quiet?: boolean;
}

/** Output exactly as the command wrote it (never trimmed). */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface FileAttributes {
  /** Owner and group; unset keeps whoever writes the file. */
  owner?: string;
  group?: string;
  /** Numeric mode (0o640) or its octal text ('0640'). Default 0o644. */
  mode?: number | string;
}

export interface Connection {
  readonly target: HostTarget;
  /** Masks secrets in everything this connection echoes or puts into an error. */
  readonly masker: Masker;
  run(cmd: Command, opts?: RunOptions): Promise<RunResult>;
  /**
   * Several commands in one round trip (one channel, one sudo), run one after another; each gets its
   * own result, or its CommandError (check) in its place. A transport failure or the batch's timeout
   * throws, as run does.
   */
  runEach(cmds: EachCommand[], opts?: { timeoutMs?: number }): Promise<(RunResult | CommandError)[]>;
  /**
   * Read-only SQL on a psql that `psql` starts (it reads SQL on stdin), kept open between calls
   * where the connector can (a kept connection, kept.ts); undefined where it cannot (run psql afresh).
   * Checked as run() checks: an error psql reports throws its CommandError.
   */
  sqlKept?(psql: EachCommand, sql: string, opts?: { timeoutMs?: number; display?: string }): Promise<RunResult> | undefined;
  /**
   * GETs of URLs as the host itself would reach them, without a process there (an SSH channel to
   * each address, kept.ts); HTTPS verified against `ca`. undefined where the connector cannot.
   */
  httpKept?(urls: string[], opts: { ca?: string[]; timeoutMs: number }): Promise<({ status: number; body: string } | { error: string })[]> | undefined;
  /** A file's content, or null when it does not exist. Read with sudo when the target uses it. */
  readFile(path: string): Promise<string | null>;
  /** Replaces a file atomically: temp file in the same directory, chown/chmod, rename.
   * The content travels over stdin, never on a command line. */
  writeFileAtomic(path: string, content: string, attrs?: FileAttributes): Promise<void>;
  close(): Promise<void>;
}

/** A command that ran and exited non-zero (check: true). */
export class CommandError extends HostError {
  constructor(
    host: string,
    readonly command: string, // masked
    readonly result: RunResult,
    message: string,
  ) {
    super(host, message);
  }
}

/** A command that ran out of its time limit and was killed on the host. */
export class CommandTimedOut extends HostError {}

/** What a connector's transport returns for one command. */
export interface RawResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Thrown by a connector's exec when a command ran out of time (its channel is then killed). */
export class CommandTimeout extends Error {}

function modeText(mode: number | string): string {
  const text = typeof mode === 'number' ? mode.toString(8) : mode;
  if (!/^[0-7]{3,4}$/.test(text)) throw new Error(`bad file mode ${JSON.stringify(mode)}`);
  return text.padStart(4, '0');
}

// Exit 44 only when the file is really missing, not when a directory on the way is unreadable.
const READ_FILE = [
  'if [ -e "$1" ]; then exec cat -- "$1"; fi',
  'case $(LC_ALL=C ls -d -- "$1" 2>&1) in *"No such file"*) exit 44 ;; esac',
  'exec cat -- "$1"',
].join('\n');
const WRITE_FILE = [
  'set -eu',
  'dst=$1',
  'mkdir -p -- "$(dirname -- "$dst")"',
  'tmp=$(mktemp "$(dirname -- "$dst")/.$(basename -- "$dst").pgha.XXXXXX")',
  `trap 'rm -f -- "$tmp"' EXIT`,
  'cat >"$tmp"',
  '[ -z "$2" ] || chown -- "$2" "$tmp"',
  '[ -z "$3" ] || chgrp -- "$3" "$tmp"',
  'chmod -- "$4" "$tmp"',
  'sync -- "$tmp"', // the rename must not land before the data after a crash
  'mv -f -- "$tmp" "$dst"',
  'trap - EXIT',
].join('\n');

const STDERR_TAIL_LINES = 20;

// runEach's script: $1 the batch's mark, $2 the users' groups looked up once, then one shell text per command, each run in a subshell
// in turn. Its stdout and its stderr are each framed by marks on lines of their own.
const EACH_SCRIPT = String.raw`m=$1; eval "$2"; shift 2; i=0
for t in "$@"; do
  printf '\n%s %s\n' "$m" "$i"; printf '\n%s %s\n' "$m" "$i" >&2
  (eval "$t") </dev/null
  c=$?
  printf '\n%s %s end %s\n' "$m" "$i" "$c"; printf '\n%s %s end %s\n' "$m" "$i" "$c" >&2
  i=$((i+1))
done`;

/** runEach's output: each command's text (by its index) between its marks, and its exit code. */
function eachParts(out: string, mark: string): Map<number, { text: string; code: number }> {
  const parts = new Map<number, { text: string; code: number }>();
  for (const m of out.matchAll(new RegExp(String.raw`\n${mark} (\d+)\n([\s\S]*?)\n${mark} \1 end (\d+)\n`, 'g'))) {
    parts.set(Number(m[1]), { text: m[2], code: Number(m[3]) });
  }
  return parts;
}

export interface ShellConnectionOptions {
  masker?: Masker;
  /** Verbose mode: called with each command (already masked) before it runs. */
  onCommand?: (host: string, command: string) => void;
  /** The run log: called with each command's outcome (timeouts and transport failures too, as code -1). */
  onResult?: (host: string, command: string, outcome: CommandOutcome) => void;
}

export abstract class ShellConnection implements Connection {
  readonly masker: Masker;
  protected readonly onCommand?: (host: string, command: string) => void;
  protected readonly onResult?: (host: string, command: string, outcome: CommandOutcome) => void;

  constructor(
    readonly target: HostTarget,
    opts: ShellConnectionOptions = {},
  ) {
    this.masker = opts.masker ?? new Masker();
    this.onCommand = opts.onCommand;
    this.onResult = opts.onResult;
  }

  /** Runs shell text on the host; throws CommandTimeout when timeoutMs (0: none) runs out. */
  protected abstract exec(text: string, stdin: string | undefined, timeoutMs: number): Promise<RawResult>;
  abstract close(): Promise<void>;

  /**
   * Runs `text` (already wrapped in sudo and a time limit); `rootText` is the same command as root
   * has it run, for a connector that holds a root shell already (a kept connection, kept.ts).
   */
  protected execAsRoot(text: string, _rootText: string, timeoutMs: number): Promise<RawResult> {
    return this.exec(text, undefined, timeoutMs);
  }

  /** SQL on the kept psql that `start` (already wrapped) runs; only a connector that keeps one has it. */
  protected execKeptSql?(start: string, sql: string, timeoutMs: number): Promise<RawResult>;

  sqlKept(psql: EachCommand, sql: string, opts: { timeoutMs?: number; display?: string } = {}): Promise<RunResult> | undefined {
    const keptSql = this.execKeptSql?.bind(this);
    if (!keptSql) return undefined;
    const timeoutMs = opts.timeoutMs ?? this.target.commandTimeoutMs;
    const { text, shown } = this.wrap(psql.cmd, { user: psql.user }, 0);
    const masked = this.masker.mask(opts.display ?? `${shown} (kept open) <<< ${sql}`);
    return (async () => {
      this.onCommand?.(this.target.name, masked);
      const started = Date.now();
      let raw: RawResult;
      try {
        raw = await keptSql(text, sql, timeoutMs);
        this.onResult?.(this.target.name, masked, { code: raw.code ?? -1, stdout: raw.stdout, stderr: raw.stderr, ms: Date.now() - started });
      } catch (err) {
        throw this.notRun(err, [masked], timeoutMs, started);
      }
      const result = this.result(raw);
      const failed = this.failure(masked, raw, result);
      if (failed) throw failed;
      return result;
    })();
  }

  async run(cmd: Command, opts: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? this.target.commandTimeoutMs;
    const { text, shown, escalated } = this.wrap(cmd, opts, timeoutMs);
    const masked = this.masker.mask(opts.display ?? shown);
    this.onCommand?.(this.target.name, masked);
    let raw: RawResult;
    const started = Date.now();
    try {
      raw = await this.exec(text, opts.stdin, timeoutMs);
      this.onResult?.(this.target.name, masked, { code: raw.code ?? -1, stdout: raw.stdout, stderr: raw.stderr, ms: Date.now() - started, quiet: opts.quietOutput });
    } catch (err) {
      throw this.notRun(err, [masked], timeoutMs, started);
    }
    const result = this.result(raw);
    if (result.code !== 0 && escalated) this.checkSudo(result);
    const failed = opts.check !== false ? this.failure(masked, raw, result) : undefined;
    if (failed) throw failed;
    return result;
  }

  /** The error to throw when the transport gave no answer (a timeout, a lost connection), each command logged as such. */
  private notRun(err: unknown, shown: string[], timeoutMs: number, started: number): HostError {
    for (const s of shown) this.onResult?.(this.target.name, s, { code: -1, stdout: '', stderr: err instanceof Error ? err.message : String(err), ms: Date.now() - started });
    const what = shown.join('; ');
    if (err instanceof CommandTimeout) {
      const [they, were] = shown.length === 1 ? ['command', 'was'] : ['commands', 'were'];
      return new CommandTimedOut(this.target.name, `${they} timed out after ${timeoutMs / 1000}s and ${were} killed: ${what}`);
    }
    if (err instanceof HostError) return err;
    return new HostError(this.target.name, `could not run ${what}: ${(err as Error).message}`);
  }

  /** A transport's answer as a RunResult: a signal as 128+N; stderr masked here, once (it is only ever shown). */
  private result(raw: RawResult): RunResult {
    const code = raw.code ?? 128 + ((raw.signal && osConstants.signals[raw.signal as NodeJS.Signals]) || 0);
    return { code, stdout: raw.stdout, stderr: this.masker.mask(raw.stderr) };
  }

  /** The CommandError of a non-zero exit, with the tail of stderr; undefined for exit 0. */
  private failure(masked: string, raw: RawResult, result: RunResult): CommandError | undefined {
    if (result.code === 0) return undefined;
    const why = raw.code === null ? `killed by signal ${raw.signal}` : `exit ${result.code}`;
    const tail = result.stderr.trimEnd().split('\n').slice(-STDERR_TAIL_LINES);
    const stderr = tail.join('') === '' ? '' : `\n${tail.map((l) => `    ${l}`).join('\n')}`;
    return new CommandError(this.target.name, masked, result, `command failed (${why}): ${masked}${stderr}`);
  }

  async runEach(cmds: EachCommand[], opts: { timeoutMs?: number } = {}): Promise<(RunResult | CommandError)[]> {
    const timeoutMs = opts.timeoutMs ?? this.target.commandTimeoutMs;
    // Without sudo there is no root to switch users from: one run each.
    if (cmds.length < 2 || (this.target.user !== 'root' && !this.target.sudo)) {
      return Promise.all(
        cmds.map((c) =>
          this.run(c.cmd, { user: c.user, check: c.check, display: c.display, timeoutMs }).catch((err: unknown) => {
            if (err instanceof CommandError) return err;
            throw err;
          }),
        ),
      );
    }
    const mark = `pgha-${randomBytes(6).toString('hex')}`;
    // setpriv changes user without a PAM session (a fraction of sudo's cost): the user's primary
    // group and groups, and (--reset-env) its HOME, USER and LOGNAME as sudo -u sets them, a plain PATH.
    const users = [...new Set(cmds.map((c) => c.user).filter((u): u is string => !!u && u !== 'root'))];
    const texts = cmds.map((c) => {
      const argv = (typeof c.cmd === 'string' ? ['sh', '-c', c.cmd] : c.cmd).map(shellQuote).join(' ');
      const limit = c.timeoutMs ? `timeout -k 1 ${Math.ceil(c.timeoutMs / 1000)}s ` : '';
      if (!c.user || c.user === 'root') {
        // A shell script as root without a limit of its own runs in the part's own subshell, not in a
        // new sh (a process costs a host more than the bytes); the batch's variables unset first.
        const script = typeof c.cmd === 'string' ? { text: c.cmd, args: [] } : c.cmd[0] === 'sh' && c.cmd[1] === '-c' && c.cmd.length >= 3 ? { text: c.cmd[2], args: c.cmd.slice(4) } : undefined;
        return script && !limit ? `unset m i t c; set -- ${script.args.map(shellQuote).join(' ')}\n${script.text}` : `${limit}${argv}`;
      }
      return `${limit}setpriv --reuid=${shellQuote(c.user)} --regid="\${pgha_g${users.indexOf(c.user)}:?unknown user}" --init-groups --reset-env -- ${argv}`;
    });
    // Each user's primary group, once a batch (not once a command).
    const groups = users.map((u, i) => `pgha_g${i}=$(id -g -- ${shellQuote(u)})`).join('; ');
    const shown = cmds.map((c) => this.masker.mask(c.display ?? `${c.user ? `[as ${c.user}] ` : '[sudo] '}${commandText(c.cmd)}`));
    for (const s of shown) this.onCommand?.(this.target.name, s);
    // The batch gets run()'s sudo and time limit; the log gets its commands, one by one.
    const batch = ['sh', '-c', EACH_SCRIPT, 'pgha-each', mark, groups, ...texts];
    const { text } = this.wrap(batch, { sudo: true }, timeoutMs);
    const started = Date.now();
    let raw: RawResult;
    try {
      raw = await this.execAsRoot(text, commandText(batch), timeoutMs);
    } catch (err) {
      throw this.notRun(err, shown, timeoutMs, started);
    }
    const whole = this.result(raw);
    if (whole.code !== 0) this.checkSudo(whole);
    const outs = eachParts(raw.stdout, mark);
    const errs = eachParts(raw.stderr, mark);
    const ms = Date.now() - started;
    return cmds.map((c, i) => {
      const out = outs.get(i);
      // No end mark: the batch ended before this command did (killed, or it could not start).
      const part: RawResult = out
        ? { code: out.code, signal: null, stdout: out.text, stderr: errs.get(i)?.text ?? '' }
        : { code: raw.code === 0 ? -1 : raw.code, signal: raw.signal, stdout: '', stderr: `the batch ended before this command did: ${raw.stderr.trim() || `exit ${raw.code}`}` };
      this.onResult?.(this.target.name, shown[i], { code: part.code ?? -1, stdout: part.stdout, stderr: part.stderr, ms });
      const result = this.result(part);
      return (c.check !== false ? this.failure(shown[i], part, result) : undefined) ?? result;
    });
  }

  /** Builds the shell text (sudo when asked, a time limit) and the form shown to the operator. */
  protected wrap(cmd: Command, opts: RunOptions, timeoutMs: number): { text: string; shown: string; escalated: boolean } {
    const root = this.target.user === 'root';
    const asUser = opts.user !== undefined && opts.user !== this.target.user ? opts.user : undefined;
    const escalate = asUser !== undefined || (!root && (opts.sudo ?? this.target.sudo));
    const text = commandText(cmd);
    // Killing the channel does not stop a command behind sudo: coreutils' timeout does, with its
    // whole process group. It fires a second after the client's own timer, which reports it.
    const limit = timeoutMs > 0 ? ['timeout', '-k', '5', `${Math.ceil(timeoutMs / 1000) + 1}s`] : [];
    const sudo = escalate ? ['sudo', '-n', ...(asUser ? ['-u', asUser] : []), '--'] : [];
    const argv = typeof cmd === 'string' ? ['sh', '-c', cmd] : cmd;
    const wrapped = sudo.length + limit.length === 0 ? text : [...sudo, ...limit, ...argv].map(shellQuote).join(' ');
    // Shown unwrapped, so masking sees secrets as they were written.
    const shown = escalate ? `${asUser ? `[as ${asUser}] ` : '[sudo] '}${text}` : text;
    return { text: wrapped, shown, escalated: escalate };
  }

  private checkSudo(result: RunResult): void {
    const user = this.target.user;
    if (/^sudo: (a password is required|a terminal is required)/m.test(result.stderr)) {
      // A command the operator runs as root: the user name is quoted like any other word.
      const line = shellQuote(`${user} ALL=(ALL:ALL) NOPASSWD: ALL`);
      throw new HostError(
        this.target.name,
        `sudo asks user ${user} for a password; pgha needs passwordless sudo. ` +
          `On the host, run as root: echo ${line} > /etc/sudoers.d/pgha && chmod 0440 /etc/sudoers.d/pgha ` +
          `(or connect as root).`,
      );
    }
    if (result.code === 127 && /sudo: (command )?not found/.test(result.stderr)) {
      throw new HostError(this.target.name, `sudo is not installed, and user ${user} is not root: install sudo (apt-get install sudo) or connect as root.`);
    }
  }

  async readFile(path: string): Promise<string | null> {
    const r = await this.run(['sh', '-c', READ_FILE, 'sh', path], { check: false, display: `read ${path}`, quietOutput: true });
    if (r.code === 44) return null;
    if (r.code !== 0) {
      throw new CommandError(this.target.name, `cat ${path}`, r, `cannot read ${path}: ${this.masker.mask(r.stderr).trim()}`);
    }
    return r.stdout;
  }

  async writeFileAtomic(path: string, content: string, attrs: FileAttributes = {}): Promise<void> {
    const mode = modeText(attrs.mode ?? 0o644);
    await this.run(['sh', '-c', WRITE_FILE, 'sh', path, attrs.owner ?? '', attrs.group ?? '', mode], { stdin: content, display: `write ${path} (${attrs.owner ?? '-'}:${attrs.group ?? '-'} ${mode})` });
  }
}
