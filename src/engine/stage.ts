// A rollout is a sequence of stages. A stage runs its hosts in parallel, each host's ops in
// order; a failure stops that host's remaining ops and makes the stage throw StageFailed,
// so the caller stops the rollout. Handlers notified by a changed op run once per host at
// the end of the stage. In check mode only `check` runs and nothing changes.
import { HostError, PghaError } from '../errors.js';
import type { Connection } from '../ssh/index.js';
import { Facts } from './facts.js';
import type { Change, Handler, Operation } from './ops.js';
import { Counts, OpStatus, Reporter } from './reporter.js';
import { Probe, WaitOptions, waitFor } from './wait.js';

export interface OpResult {
  describe: string;
  status: OpStatus;
  change?: Change;
  error?: string;
}

export interface HostResult {
  host: string;
  ops: OpResult[];
  handlers: OpResult[];
  failed: boolean;
}

export interface StageResult {
  name: string;
  hosts: HostResult[];
  failedHosts: string[];
  changed: number;
}

export class StageFailed extends PghaError {
  constructor(readonly result: StageResult) {
    super(`stage ${result.name} failed on ${result.failedHosts.join(', ')}; the rollout stopped there`);
  }
}

export interface RolloutOptions {
  /** --check: report what would change, change nothing. */
  check?: boolean;
  reporter?: Reporter;
  /** --limit: only these hosts' steps run; every stage names the hosts it skips. Health gates are not limited. */
  limit?: ReadonlySet<string>;
}

/** One op that changed (or would change) something, for the JSON recap. */
export interface ChangeRecord {
  host: string;
  stage: string;
  step: string;
  summary: string;
}

/** Handlers in first-notified order, each once (by name). */
export function dedupeHandlers(handlers: Handler[]): Handler[] {
  const seen = new Map<string, Handler>();
  for (const h of handlers) if (!seen.has(h.name)) seen.set(h.name, h);
  return [...seen.values()];
}

function errorText(host: string, err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return err instanceof HostError && msg.startsWith(`${host}: `) ? msg.slice(host.length + 2) : msg;
}

export class Rollout {
  readonly check: boolean;
  readonly reporter: Reporter;
  readonly limit?: ReadonlySet<string>;
  private readonly totals = new Map<string, Counts>();
  private readonly results: StageResult[] = [];
  /** Hosts some stage left out because of --limit. */
  private readonly limitedOut = new Set<string>();

  constructor(opts: RolloutOptions = {}) {
    this.check = opts.check ?? false;
    this.reporter = opts.reporter ?? new Reporter();
    this.limit = opts.limit;
  }

  /** Runs one stage; throws StageFailed (after reporting) when any host failed. With a limit, only its hosts run (the others are named). */
  async stage(name: string, all: Connection[], perHostOps: (conn: Connection) => Operation[]): Promise<StageResult> {
    const hosts = this.limit ? all.filter((c) => this.limit!.has(c.target.name)) : all;
    const skipped = all.filter((c) => !hosts.includes(c)).map((c) => c.target.name);
    if (skipped.length) {
      for (const h of skipped) this.limitedOut.add(h);
      this.reporter.limitSkipped(name, skipped, hosts.length === 0);
    }
    if (hosts.length === 0) return { name, hosts: [], failedHosts: [], changed: 0 };
    const names = hosts.map((c) => c.target.name);
    this.reporter.stageStart(name, names, this.check);
    const started = Date.now();
    let done = 0;
    const results = await Promise.all(
      hosts.map(async (conn) => {
        const r = await this.runHost(conn, perHostOps(conn));
        this.reporter.hostDone(name, ++done, hosts.length);
        return r;
      }),
    );
    const result: StageResult = {
      name,
      hosts: results,
      failedHosts: results.filter((r) => r.failed).map((r) => r.host),
      changed: results.reduce((n, r) => n + r.ops.filter((o) => o.status === 'changed').length, 0),
    };
    this.results.push(result);
    this.reporter.stageEnd(name, result.failedHosts, result.changed, this.check, Date.now() - started);
    if (result.failedHosts.length > 0) throw new StageFailed(result);
    return result;
  }

  private async runHost(conn: Connection, ops: Operation[]): Promise<HostResult> {
    const host = conn.target.name;
    const result: HostResult = { host, ops: [], handlers: [], failed: false };
    const counts = this.totals.get(host) ?? { ok: 0, changed: 0, failed: 0, skipped: 0 };
    this.totals.set(host, counts);
    const record = (r: OpResult, list: OpResult[]) => {
      list.push(r);
      counts[r.status]++;
    };
    const facts = new Facts(conn);
    const notified: Handler[] = [];
    try {
      // All facts the ops declared, in a few round trips.
      await facts.prefetch({
        files: ops.flatMap((o) => o.needs?.files ?? []),
        packages: ops.flatMap((o) => o.needs?.packages ?? []),
        services: ops.flatMap((o) => o.needs?.services ?? []),
        users: ops.flatMap((o) => o.needs?.users ?? []),
        groups: ops.flatMap((o) => o.needs?.groups ?? []),
      });
    } catch (err) {
      result.failed = true;
      const error = `reading facts: ${errorText(host, err)}`;
      this.reporter.opResult(host, 'facts', 'failed', this.check, null, error);
      record({ describe: 'facts', status: 'failed', error }, result.ops);
    }
    for (const op of ops) {
      if (result.failed) {
        record({ describe: op.describe, status: 'skipped' }, result.ops);
        continue;
      }
      try {
        const change = await op.check(conn, facts);
        if (change && !this.check) await op.apply(conn, facts, (text) => this.reporter.progress(host, text));
        const status: OpStatus = change ? 'changed' : 'ok';
        this.reporter.opResult(host, op.describe, status, this.check, change);
        record({ describe: op.describe, status, ...(change ? { change } : {}) }, result.ops);
        if (change) notified.push(...(op.notify ?? []));
      } catch (err) {
        result.failed = true;
        const error = errorText(host, err);
        this.reporter.opResult(host, op.describe, 'failed', this.check, null, error);
        record({ describe: op.describe, status: 'failed', error }, result.ops);
      }
    }
    // A failed host keeps its pending handlers un-run: its state is unknown.
    if (!result.failed) {
      for (const h of dedupeHandlers(notified)) {
        try {
          if (!this.check) await h.run(conn);
          this.reporter.handlerResult(host, h.name, 'changed', this.check);
          record({ describe: h.name, status: 'changed' }, result.handlers);
        } catch (err) {
          result.failed = true;
          const error = errorText(host, err);
          this.reporter.handlerResult(host, h.name, 'failed', this.check, error);
          record({ describe: h.name, status: 'failed', error }, result.handlers);
          break;
        }
      }
    }
    return result;
  }

  /** A health gate between stages (see waitFor); progress goes to this rollout's reporter. */
  waitFor(description: string, probe: Probe, opts: Omit<WaitOptions, 'reporter'>): Promise<void> {
    return waitFor(description, probe, { ...opts, reporter: this.reporter });
  }

  /** How many ops changed something in the stages of these names so far. */
  changedIn(stageNames: string[]): number {
    return this.results.filter((r) => stageNames.includes(r.name)).reduce((n, r) => n + r.changed, 0);
  }

  /** Per-host ok/changed/failed counts over every stage so far. */
  counts(): Map<string, Counts> {
    return new Map(this.totals);
  }

  /** Every op that changed (or, in check mode, would change) something, in order. */
  changes(): ChangeRecord[] {
    return this.results.flatMap((r) =>
      r.hosts.flatMap((h) => [...h.ops, ...h.handlers].filter((o) => o.status === 'changed').map((o) => ({ host: h.host, stage: r.name, step: o.describe, summary: o.change?.summary ?? 'handler' }))),
    );
  }

  /** Hosts left out of some stage by --limit (only read by the gates). */
  skippedByLimit(): string[] {
    return [...this.limitedOut].filter((h) => !this.totals.has(h));
  }

  /** Prints the recap; returns the exit code (1 if anything failed). */
  finish(): number {
    this.reporter.recap(this.totals, this.check, { limitedOut: this.skippedByLimit() });
    return [...this.totals.values()].some((c) => c.failed > 0) ? 1 : 0;
  }
}
