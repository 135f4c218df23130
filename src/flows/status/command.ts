// `pgha status`: one view of the whole cluster, gathered from the hosts, with a verdict.
// Exit code, as monitoring plugins expect: 0 healthy, 1 degraded, 2 down, 3 unknown (bad input).
import { Reporter } from '../../engine/reporter.js';
import { InputError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { connectEach, secretMasker } from '../../session/session.js';
import type { CommandContext } from '../context.js';
import { gatherStatus } from './gather.js';
import { assembleStatus, type Verdict } from './model.js';
import { formatStatus } from './format.js';

export const VERDICT_EXIT: Record<Verdict, number> = { healthy: 0, degraded: 1, down: 2 };
/** Status could not say (bad input, no inventory): "unknown" to a monitoring system. */
export const UNKNOWN_EXIT = 3;

export interface StatusOptions {
  json?: boolean;
  watch?: boolean;
  verbose?: boolean;
  /** Watch mode: refresh period. */
  intervalMs?: number;
}

export async function status(ctx: CommandContext, opts: StatusOptions): Promise<number> {
  let inv: Inventory;
  try {
    inv = await ctx.inventory(); // bad input fails before anything is printed
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    // A monitoring system reading --json gets a document that says "unknown" (the error is on stderr too).
    if (opts.json) ctx.out(`${JSON.stringify({ cluster: null, verdict: 'unknown', reasons: [err.message, ...err.lines] }, null, 2)}\n`);
    throw new InputError(err.message, err.lines);
  }
  const reporter = new Reporter({ verbose: opts.verbose, out: process.stderr, masker: secretMasker(inv), log: ctx.log });
  const once = async () => {
    const started = Date.now();
    // Connected afresh each time: a host that was unreachable may be back.
    // Through the keeper: the next status (or the next --watch round) finds the hosts connected.
    const reach = connectEach(inv, { ...ctx.sessionOptions(), reporter, keeper: ctx.keeper?.() });
    let inputs;
    try {
      inputs = await gatherStatus(inv, reach);
    } finally {
      await reach.close();
    }
    const report = assembleStatus(inputs);
    const ms = Date.now() - started;
    if (opts.json) ctx.out(`${JSON.stringify({ ...report, elapsed_ms: ms }, null, 2)}\n`);
    else ctx.out(formatStatus(report, { color: ctx.color, elapsedMs: ms }));
    return VERDICT_EXIT[report.verdict];
  };
  if (!opts.watch) return once();
  const interval = opts.intervalMs ?? 2000;
  // Until Ctrl+C (the default SIGINT handling ends the process).
  for (;;) {
    const started = Date.now();
    if (ctx.color && !opts.json) ctx.out('\x1b[H\x1b[2J');
    await once();
    if (!opts.json) ctx.out(`\nrefreshing every ${interval / 1000}s; Ctrl+C to stop\n`);
    await new Promise((res) => setTimeout(res, Math.max(0, interval - (Date.now() - started))));
  }
}
