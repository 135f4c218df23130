// The per-run log: everything a command printed and every command it ran on a host, with the
// exit code, duration and output, so a failed apply can be diagnosed afterwards. Secrets are
// masked (the inventory's passwords, an SSH passphrase); file contents pgha reads and anything
// sent on stdin are never written. `--log FILE`, or by default a file per run under the user's
// state directory (Linux: $XDG_STATE_HOME/pgha or ~/.local/state/pgha), of which the newest
// KEEP_DEFAULT_LOGS are kept. Writes are synchronous: a killed run keeps what it logged.
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import envPaths from 'env-paths';
import { InputError } from '../errors.js';
import { escapeControls } from '../terminal.js';
import { Masker } from '../ssh/mask.js';

export const KEEP_DEFAULT_LOGS = 50;
/** Lines of a command's stdout and stderr kept in the log (the last ones). */
const OUTPUT_LINES = 200;

/** The directory of the default logs. */
export function defaultLogDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PGHA_LOG_DIR ? resolve(env.PGHA_LOG_DIR) : envPaths('pgha', { suffix: '' }).log;
}

/** A new default log file for `command`, the oldest beyond KEEP_DEFAULT_LOGS removed. */
export function defaultLogPath(command: string, now = new Date(), env: NodeJS.ProcessEnv = process.env): string {
  const dir = defaultLogDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const ours = readdirSync(dir).filter((f) => /^\d{8}T\d{6}Z-[a-z]+(-\d+)?\.log$/.test(f)).sort();
  for (const old of ours.slice(0, Math.max(0, ours.length - (KEEP_DEFAULT_LOGS - 1)))) rmSync(join(dir, old), { force: true });
  let file = join(dir, `${stamp}-${command}.log`);
  for (let n = 2; ours.includes(file.slice(dir.length + 1)); n++) file = join(dir, `${stamp}-${command}-${n}.log`);
  return file;
}

export class RunLog {
  private readonly masker = new Masker();
  private fd: number | undefined;
  /** Lines before the file exists (a lazy log is created by the first command run on a host). */
  private pending: string[] | undefined;
  private closed = false;

  private constructor(readonly path: string) {}

  /**
   * Opens (creates or appends to) the log, mode 0600; an unwritable path is bad input. `lazy`
   * (the default logs): the file appears only once a command runs on a host, so a run that
   * stopped at bad input leaves none behind.
   */
  static open(path: string, argv: string[], opts: { lazy?: boolean } = {}): RunLog {
    const log = new RunLog(path);
    if (opts.lazy) log.pending = [];
    else log.create();
    log.write(`=== ${new Date().toISOString()} pgha ${argv.join(' ')} (cwd ${process.cwd()}, pid ${process.pid})`);
    return log;
  }

  /** Whether the file exists (a lazy log that never saw a host command has none). */
  get written(): boolean {
    return this.fd !== undefined || (this.closed && this.pending === undefined);
  }

  private create(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      this.fd = openSync(this.path, 'a', 0o600);
    } catch (err) {
      throw new InputError(`cannot write the log file ${this.path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    for (const line of this.pending ?? []) this.append(line);
    this.pending = undefined;
  }

  private append(line: string): void {
    try {
      writeSync(this.fd!, line);
    } catch {
      // a full disk must not fail the command it logs
    }
  }

  /** Values masked from here on (passwords once the inventory is loaded, a passphrase once given). */
  addSecrets(values: Iterable<string>): void {
    for (const v of values) this.masker.add(v);
  }

  private write(text: string): void {
    if (this.closed) return;
    const time = new Date().toISOString().slice(11, 23);
    const body = escapeControls(this.masker.mask(text), { keepNewlines: true }).replace(/\n$/, '');
    const line = `${body.split('\n').map((l) => `${time} ${l}`).join('\n')}\n`;
    if (this.pending) this.pending.push(line);
    else this.append(line);
  }

  /** What the command printed (stdout or stderr). */
  readonly output = (stream: 'out' | 'err', text: string): void => {
    const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''); // colours and cursor moves
    if (clean.trim() !== '') this.write(`${stream === 'out' ? '>' : '!'} ${clean.replace(/\n(?=.)/g, `\n${stream === 'out' ? '>' : '!'} `)}`);
  };

  /** The run reaches for its hosts: a lazy log becomes a file now (connection failures are worth keeping). */
  begin(): void {
    if (!this.pending) return;
    try {
      this.create();
    } catch {
      this.pending = undefined; // no log rather than a failed command
      this.closed = true;
    }
  }

  /** A command about to run on a host (already masked). */
  readonly command = (host: string, command: string): void => {
    this.begin();
    this.write(`${host}: $ ${command}`);
  };

  /** Its outcome; `quiet`: the output is a file's content and stays out of the log. */
  readonly result = (host: string, command: string, r: { code: number; stdout: string; stderr: string; ms: number; quiet?: boolean }): void => {
    const tail = (s: string) => {
      const lines = s.replace(/\n$/, '').split('\n');
      return (lines.length > OUTPUT_LINES ? [`... ${lines.length - OUTPUT_LINES} lines before`, ...lines.slice(-OUTPUT_LINES)] : lines).map((l) => `    ${l}`).join('\n');
    };
    const parts = [`${host}: exit ${r.code} after ${(r.ms / 1000).toFixed(2)}s: ${command}`];
    if (r.quiet) parts.push(`    (output not logged: ${Buffer.byteLength(r.stdout)} bytes of file content)`);
    else if (r.stdout.trim()) parts.push('  stdout:', tail(r.stdout));
    if (r.stderr.trim()) parts.push('  stderr:', tail(r.stderr));
    this.write(parts.join('\n'));
  };

  close(exitCode: number): void {
    this.write(`=== exit ${exitCode}`);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.closed = true;
  }
}
