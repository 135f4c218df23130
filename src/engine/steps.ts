// The timed-step reporter of runbooks (restore, switchover, failover, and the day-2 procedures):
// a runbook is a sequence of steps, each printed as it starts and with its duration when done,
// and milestones printed with the time since the runbook began. The rollout's recap is its
// counterpart for `apply`.
import { PghaError } from '../errors.js';

export interface StepTiming {
  name: string;
  ms: number;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export class Steps {
  readonly started = Date.now();
  readonly timings: StepTiming[] = [];

  constructor(
    private readonly out: (text: string) => void,
    /** Turns a failed step's error into the one the operator sees (e.g. "the cluster is stopped now: ..."). */
    private readonly onFailure?: (step: string, err: unknown) => Error,
  ) {}

  /** Runs one step: `==> NAME`, then `done in Ns`; a failure goes through onFailure. */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.out(`==> ${name}\n`);
    const t0 = Date.now();
    try {
      const r = await fn();
      const ms = Date.now() - t0;
      this.timings.push({ name, ms });
      this.out(`    done in ${secs(ms)}\n`);
      return r;
    } catch (err) {
      throw this.onFailure ? this.onFailure(name, err) : err;
    }
  }

  /** A milestone: `  TEXT after Ns[: DETAIL]` (time since the runbook began); returns that time in ms. */
  mark(text: string, detail?: string): number {
    const ms = this.elapsedMs();
    this.out(`  ${text} after ${secs(ms)}${detail ? `: ${detail}` : ''}\n`);
    return ms;
  }

  /** A line of the runbook's output. */
  say(text: string): void {
    this.out(`${text}\n`);
  }

  elapsedMs(): number {
    return Date.now() - this.started;
  }

  /** Each step's duration, one line each (the end of a runbook's output). */
  summary(): string {
    return this.timings.map((s) => `  ${(s.ms / 1000).toFixed(1).padStart(7)}s  ${s.name}\n`).join('');
  }
}

/** The message of a step that failed inside a runbook, with what state it left. */
export function stepFailure(step: string, err: unknown, state: string): PghaError {
  const msg = err instanceof Error ? err.message : String(err);
  return new PghaError(`${step} failed: ${msg}\n${state}`);
}

export { secs as formatSeconds };
