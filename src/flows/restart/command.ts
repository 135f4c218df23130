// `pgha restart`: a rolling restart of the members Patroni marks pending_restart (or of every
// member with --all): the plan, the preflight, a confirmation, then the roll, each step timed.
import { Steps } from '../../engine/index.js';
import { EXIT } from '../../errors.js';
import type { CommandContext } from '../context.js';
import type { Session } from '../../session/session.js';
import { describeRoll } from '../../cluster/roll.js';
import { DEFAULT_MEMBER_TIMEOUT_SEC, planRestart, runRestart } from '../../cluster/restart.js';
import { DEFAULT_MAX_TRANSACTION_AGE_SEC, gatherPreflight, preflightFailure, preflightProblems } from '../../cluster/preflight.js';

export interface RestartOptions {
  check?: boolean;
  yes?: boolean;
  all?: boolean;
  /** Seconds a member may take to come back (commander parses it). */
  timeout?: number;
  maxTransactionAge?: number;
}

/** The reachable hosts; the unreachable ones are named (the preflight refuses when a database host is one). */
async function tolerantSession(ctx: CommandContext): Promise<Session> {
  const session = await (await ctx.reach()).session();
  for (const [name, why] of session.unreachable) ctx.out(`note: ${name} is unreachable: ${why}\n`);
  return session;
}

export async function restart(ctx: CommandContext, opts: RestartOptions): Promise<number> {
  const inv = await ctx.inventory();
  const timeoutSec = opts.timeout ?? DEFAULT_MEMBER_TIMEOUT_SEC;
  const confirmation = {
    yes: opts.yes,
    noTerminal: 'restart restarts PostgreSQL on the members and switches the leader over, and needs a confirmation, but there is no terminal to ask on: add --yes to go ahead without asking',
  };
  if (!opts.check) ctx.needsConfirmation(confirmation); // refused before any host is contacted
  const session = await tolerantSession(ctx);
  const rp = await planRestart(session, { all: opts.all });
  if (rp.todo.length === 0) {
    ctx.out('nothing to restart: no member has a pending restart (--all restarts every member)\n');
    return EXIT.ok;
  }
  const what = `rolling restart of cluster ${inv.cluster.name}: ${opts.all ? 'every member' : `pending restart on ${rp.todo.join(', ')}`}`;
  ctx.out(`${what}\n${describeRoll(rp.plan, (m) => `restart ${m}`).join('\n')}\n`);
  const limits = { maxLagBytes: inv.patroni.maximum_lag_on_failover, maxTransactionAgeSec: opts.maxTransactionAge ?? DEFAULT_MAX_TRANSACTION_AGE_SEC, backups: false };
  const problems = preflightProblems(await gatherPreflight(session, limits), limits);
  if (opts.check) {
    ctx.out(problems.length ? `preflight would refuse:\n${problems.map((p) => `  ${p}`).join('\n')}\n` : 'preflight: ok (check mode: nothing was changed)\n');
    return problems.length ? EXIT.failed : EXIT.ok;
  }
  if (problems.length) throw preflightFailure('restart', problems);
  const leader = rp.plan.leader;
  const how = !leader ? '' : leader.switchover ? `, switching the leader ${leader.name} over` : `, the leader ${leader.name} in place (writes fail while it restarts)`;
  await ctx.confirm(`Restart PostgreSQL on ${rp.todo.join(', ')} one at a time${how}?`, confirmation);
  const steps = new Steps(ctx.out);
  const res = await runRestart(session, rp, steps, { all: opts.all, timeoutSec });
  const moved = res.leaderBefore && res.leaderAfter !== res.leaderBefore ? `; leader ${res.leaderBefore} -> ${res.leaderAfter}` : '';
  ctx.out(`rolling restart done in ${(steps.elapsedMs() / 1000).toFixed(1)}s: ${res.done.join(', ')}${moved}\n${steps.summary()}`);
  return EXIT.ok;
}
