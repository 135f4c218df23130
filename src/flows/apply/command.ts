// `pgha apply` and `pgha verify`. apply: bare Debian hosts -> a verified HA cluster, and later any
// edit of the inventory (hosts that join or leave a role included) carried out on the live
// cluster (with --restart-pending, then the rolling restart of pending members); src/cluster/converge.ts
// does the work. --limit runs only the named hosts' steps (the
// gates and verify still read every host); the recap is printed whatever happened, also when
// hosts could not be reached, and with --json it is one document on stdout. verify: every
// component's read-only checks.
import { createReporter, Rollout, type Counts } from '../../engine/index.js';
import { EXIT, InputError, PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { formatChecks, verifyCluster } from '../../components/index.js';
import type { CheckResult } from '../../components/types.js';
import { converge } from '../../cluster/converge.js';
import type { CommandContext } from '../context.js';
import { secretMasker, type Session } from '../../session/session.js';
import { ConnectAllError } from '../../ssh/index.js';

export interface ApplyOptions {
  check?: boolean;
  verbose?: boolean;
  acceptNewHostKeys?: boolean;
  /** Comma-separated host names. */
  limit?: string;
  json?: boolean;
  purge?: boolean;
  /** Then restart the members with a pending restart (pgha restart's runbook). */
  restartPending?: boolean;
  timeout?: number;
  maxTransactionAge?: number;
}

/** --limit's host names, each one of the inventory's (bad input otherwise). */
export function parseLimit(text: string, inv: Inventory): Set<string> {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  const known = inv.hosts.map((h) => h.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (names.length === 0) throw new InputError('--limit: no host named, expected HOST[,HOST...]');
  if (unknown.length) throw new InputError(`--limit: no host named ${unknown.join(', ')} in the inventory, expected some of: ${known.join(', ')}`);
  return new Set(names);
}

/** The JSON recap (snake_case, like every --json of pgha). */
function recapJson(o: {
  check: boolean;
  code: number;
  limit?: Set<string>;
  totals: Map<string, Counts>;
  unreachable?: Map<string, string>;
  rollout?: Rollout;
  checks?: CheckResult[];
  notes: string[];
  ms: number;
  error?: string;
}) {
  const names = [...new Set([...o.totals.keys(), ...(o.unreachable?.keys() ?? [])])];
  return {
    mode: o.check ? 'check' : 'apply',
    ok: o.code === 0,
    exit_code: o.code,
    limit: o.limit ? [...o.limit] : null,
    hosts: names.map((name) => {
      const c = o.totals.get(name) ?? { ok: 0, changed: 0, failed: 0, skipped: 0 };
      return { name, ok: c.ok, changed: c.changed, failed: c.failed, skipped: c.skipped, unreachable: o.unreachable?.has(name) ?? false, error: o.unreachable?.get(name) ?? null };
    }),
    only_read: o.rollout?.skippedByLimit() ?? [],
    changes: o.rollout?.changes() ?? [],
    verify: o.checks?.map((c) => ({ component: c.component, host: c.host ?? null, ok: c.ok, detail: c.detail })) ?? null,
    notes: o.notes,
    elapsed_ms: o.ms,
    error: o.error ?? null,
  };
}

export async function apply(ctx: CommandContext, opts: ApplyOptions): Promise<number> {
  const inv = await ctx.inventory();
  const limit = opts.limit !== undefined ? parseLimit(opts.limit, inv) : undefined;
  const check = opts.check ?? false;
  // With --json, stdout is the document alone: progress goes to stderr.
  const say = opts.json ? ctx.err : ctx.out;
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv), log: ctx.log, ...(opts.json ? { out: process.stderr } : {}) });
  const started = Date.now();
  const notes: string[] = [];
  const printJson = (doc: ReturnType<typeof recapJson>) => {
    if (opts.json) ctx.out(`${JSON.stringify(doc, null, 2)}\n`);
  };
  if (limit && opts.restartPending) throw new InputError('--restart-pending restarts members across the cluster (and switches over): run it without --limit');
  if (limit) {
    const others = inv.hosts.map((h) => h.name).filter((n) => !limit.has(n));
    say(`--limit ${[...limit].join(',')}: only ${[...limit].join(', ')} change; ${others.length ? `${others.join(', ')} are only read (health gates, verify)` : 'that is every host'}\n`);
  }

  let session: Session;
  try {
    session = await ctx.session({ acceptNewHostKeys: opts.acceptNewHostKeys, reporter });
  } catch (err) {
    // Every host is needed (the gates read them all): nothing ran; the recap says who was not reached.
    if (err instanceof ConnectAllError) {
      const unreachable = new Map(err.failures.map((f) => [f.host, f.message.slice(f.host.length + 2)]));
      const totals = new Map(inv.hosts.filter((h) => !unreachable.has(h.name)).map((h) => [h.name, { ok: 0, changed: 0, failed: 0, skipped: 0 }]));
      reporter.recap(totals, check, { unreachable });
      say('nothing was changed: apply needs every host of the inventory (its health gates read them all)\n');
      printJson(recapJson({ check, code: EXIT.failed, limit, totals, unreachable, notes, ms: Date.now() - started, error: err.message }));
    }
    throw err;
  }

  const rollout = new Rollout({ check, reporter, limit });
  try {
    const { code, checks } = await converge(session, reporter, say, { check, purge: opts.purge, inventoryFile: ctx.inventoryFile, rollout, notes, restartPending: opts.restartPending, timeout: opts.timeout, maxTransactionAge: opts.maxTransactionAge });
    printJson(recapJson({ check, code, limit, totals: rollout.counts(), rollout, checks, notes, ms: Date.now() - started }));
    return code;
  } catch (err) {
    // The recap shows which host failed where (converge printed it); the error boundary prints the reason.
    const message = err instanceof PghaError ? err.message : String(err);
    printJson(recapJson({ check, code: err instanceof PghaError ? err.exitCode : EXIT.bug, limit, totals: rollout.counts(), rollout, notes, ms: Date.now() - started, error: message }));
    throw err;
  }
}

export async function verify(ctx: CommandContext, opts: { json?: boolean } = {}): Promise<number> {
  const started = Date.now();
  const checks = await verifyCluster(await ctx.session());
  const ok = checks.every((c) => c.ok);
  if (opts.json) {
    const doc = { ok, checks: checks.map((c) => ({ component: c.component, host: c.host ?? null, ok: c.ok, detail: c.detail })), elapsed_ms: Date.now() - started };
    ctx.out(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    ctx.out(`${formatChecks(checks)}\n`);
  }
  return ok ? EXIT.ok : EXIT.failed;
}
