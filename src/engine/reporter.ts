// Every line the engine prints is written here. Results go to `out`; on a TTY an ora
// spinner per stage shows progress on stderr, elsewhere (CI, pipes) plain lines only.
import type { Ora, Options as OraOptions } from 'ora';
import type { Masker } from '../ssh/index.js';
import type { CommandOutcome } from '../ssh/connection.js';
import type { Change } from './ops.js';

export type OpStatus = 'ok' | 'changed' | 'failed' | 'skipped';

export interface Counts {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
}

/** Where the run log takes what the reporter sees (src/cli/runlog.ts). */
export interface LogSink {
  output(stream: 'out' | 'err', text: string): void;
  command(host: string, command: string): void;
  result(host: string, command: string, outcome: CommandOutcome): void;
}

export interface ReporterOptions {
  /** The run log: every line printed, every command and its outcome (verbose or not). */
  log?: LogSink;
  /** Show every command (masked) and every op, not only changes and failures. */
  verbose?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WriteStream;
  /** Default: whether `err` is a terminal. */
  tty?: boolean;
  /** Masks every line printed (a last line of defence: what reaches here should be masked already). */
  masker?: Masker;
  /** The spinner library, on a terminal (see createReporter: it is loaded only when needed). */
  ora?: (options: OraOptions) => Ora;
}

/** A Reporter with spinners on a terminal (ora is imported only then: it costs startup time). */
export async function createReporter(opts: ReporterOptions = {}): Promise<Reporter> {
  const tty = opts.tty ?? (opts.err ?? process.stderr).isTTY === true;
  return new Reporter({ ...opts, tty, ...(tty && !opts.ora ? { ora: (await import('ora')).default } : {}) });
}

export class Reporter {
  readonly verbose: boolean;
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly ora?: (options: OraOptions) => Ora;
  private readonly masker?: Masker;
  private readonly log?: LogSink;
  private spinner: Ora | undefined;

  constructor(opts: ReporterOptions = {}) {
    this.verbose = opts.verbose ?? false;
    this.out = opts.out ?? process.stdout;
    this.err = opts.err ?? process.stderr;
    this.ora = opts.ora;
    // Spinners only when there is a terminal and the library was given.
    this.tty = (opts.tty ?? this.err.isTTY === true) && this.ora !== undefined;
    this.masker = opts.masker;
    this.log = opts.log;
  }

  /** Pass as ConnectOptions.onCommand: echoes each command in verbose mode (and always to the log). */
  readonly command = (host: string, maskedCommand: string): void => {
    if (this.verbose) this.line(`${host}: $ ${maskedCommand}`);
    else this.log?.command(host, maskedCommand);
  };

  /** Pass as ConnectOptions.onResult: each command's outcome, to the log only. */
  readonly result = (host: string, maskedCommand: string, outcome: CommandOutcome): void => {
    this.log?.result(host, maskedCommand, outcome);
  };

  private m(text: string): string {
    return this.masker ? this.masker.mask(text) : text;
  }

  private line(raw: string): void {
    const text = this.m(raw);
    this.log?.output('out', `${text}\n`);
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      this.out.write(`${text}\n`);
      this.spinner.render();
    } else {
      this.out.write(`${text}\n`);
    }
  }

  stageStart(name: string, hosts: string[], check: boolean): void {
    const what = `stage ${name}${check ? ' (check mode)' : ''}: ${hosts.length} host(s)`;
    if (this.tty) {
      this.spinner = this.ora!({ text: what, stream: this.err }).start();
      this.log?.output('out', `== ${what}: ${hosts.join(', ')}\n`);
    } else this.line(`== ${what}: ${hosts.join(', ')}`);
  }

  hostDone(name: string, done: number, total: number): void {
    if (this.spinner) this.spinner.text = `stage ${name}: ${done}/${total} host(s) done`;
  }

  opResult(host: string, describe: string, status: OpStatus, check: boolean, change?: Change | null, error?: string): void {
    if (status === 'failed') {
      this.line(`${host}: FAILED ${describe}: ${error ?? 'unknown error'}`);
    } else if (status === 'changed' && change) {
      this.line(`${host}: ${check ? 'would change' : 'changed'} ${describe}: ${change.summary}`);
      if (change.diff && (check || this.verbose)) this.line(change.diff.trimEnd().replace(/^/gm, '    '));
    } else if (this.verbose) {
      this.line(`${host}: ${status} ${describe}`);
    }
  }

  /** A line of a runbook that runs between stages (e.g. apply's topology steps): always shown. */
  say(text: string): void {
    this.line(text);
  }

  /** What a host's op is doing while it takes long (e.g. waiting for a lock): always shown. */
  progress(host: string, text: string): void {
    this.line(`${host}: ${text}`);
  }

  handlerResult(host: string, name: string, status: OpStatus, check: boolean, error?: string): void {
    if (status === 'failed') this.line(`${host}: FAILED handler ${name}: ${error ?? 'unknown error'}`);
    else this.line(`${host}: ${check ? 'would run' : 'ran'} handler ${name}`);
  }

  stageEnd(name: string, failedHosts: string[], changed: number, check: boolean, ms?: number): void {
    const verb = check ? 'would change' : 'changed';
    const took = ms === undefined ? '' : ` in ${(ms / 1000).toFixed(1)}s`;
    const text = failedHosts.length
      ? `stage ${name} FAILED on ${failedHosts.join(', ')}${took}`
      : `stage ${name} ok (${changed} ${verb})${took}`;
    if (this.spinner) {
      if (failedHosts.length) this.spinner.fail(text);
      else this.spinner.succeed(text);
      this.spinner = undefined;
      this.log?.output('out', `${text}\n`);
    } else {
      this.line(text);
    }
  }

  waitStart(description: string): void {
    if (this.tty) this.spinner = this.ora!({ text: `waiting for ${description}`, stream: this.err }).start();
    else this.line(`waiting for ${description}`);
  }

  waitProgress(description: string, reason: string): void {
    if (this.spinner) this.spinner.text = this.m(`waiting for ${description}: ${reason}`);
    else if (this.verbose) this.line(`  not yet: ${reason}`);
  }

  waitEnd(description: string, ok: boolean, detail: string): void {
    const text = this.m(ok ? `${description}: ready (${detail})` : `${description}: not ready: ${detail}`);
    if (this.spinner) {
      if (ok) this.spinner.succeed(text);
      else this.spinner.fail(text);
      this.spinner = undefined;
      this.log?.output('out', `${text}\n`);
    } else {
      this.line(text);
    }
  }

  /** A stage left these hosts out (--limit). */
  limitSkipped(stage: string, hosts: string[], all: boolean): void {
    this.line(`stage ${stage}: ${all ? 'skipped' : `skipped on ${hosts.join(', ')}`} (not in --limit)`);
  }

  /**
   * The recap: a line per host. `unreachable`: hosts that could not be connected (with why), shown
   * with unreachable=1; `limitedOut`: hosts --limit kept out of every stage.
   */
  recap(totals: Map<string, Counts>, check: boolean, extra: { unreachable?: Map<string, string>; limitedOut?: string[] } = {}): void {
    this.spinner?.stop();
    this.spinner = undefined;
    const unreachable = extra.unreachable ?? new Map<string, string>();
    const names = [...new Set([...totals.keys(), ...unreachable.keys()])];
    const width = Math.max(4, ...names.map((h) => h.length));
    this.line(check ? 'RECAP (check mode: nothing was changed)' : 'RECAP');
    for (const host of names) {
      const c = totals.get(host) ?? { ok: 0, changed: 0, failed: 0, skipped: 0 };
      const skipped = c.skipped ? `  skipped=${c.skipped}` : '';
      const gone = unreachable.has(host) ? `  unreachable=1  (${unreachable.get(host)!.split('\n')[0]})` : '';
      this.line(`${host.padEnd(width)}  ok=${c.ok}  changed=${c.changed}  failed=${c.failed}${skipped}${gone}`);
    }
    if (extra.limitedOut?.length) this.line(`not in --limit (only read): ${extra.limitedOut.join(', ')}`);
  }
}
