// `pgha switchover` and `pgha failover`: checked before anything changes, confirmed (or --yes),
// then carried out end to end by the leader-change runbook, each milestone with its time.
import { Steps } from '../../engine/index.js';
import { EXIT } from '../../errors.js';
import { parseAt } from '../../components/patroni/checks.js';
import { failoverNow, planFailover, planSwitchover, scheduleSwitchover, switchoverNow } from '../../cluster/leader-change.js';
import type { CommandContext } from '../context.js';
import type { Session } from '../../session/session.js';

export interface ChangeOptions {
  candidate?: string;
  yes?: boolean;
  /** How long to wait for the change to complete end to end. */
  waitMs?: number;
}

const noTerminal = (command: string) => `${command} changes the leader and needs a confirmation, but there is no terminal to ask on: add --yes to go ahead without asking`;
const capital = (s: string) => `${s[0].toUpperCase()}${s.slice(1)}`;

/** The reachable hosts; the unreachable ones are named (a switchover or failover works without them). */
async function tolerantSession(ctx: CommandContext): Promise<Session> {
  const session = await (await ctx.reach()).session();
  for (const [name, why] of session.unreachable) ctx.out(`note: ${name} is unreachable: ${why}\n`);
  return session;
}

export async function switchover(ctx: CommandContext, opts: ChangeOptions & { at?: string }): Promise<number> {
  await ctx.inventory();
  const at = opts.at !== undefined ? parseAt(opts.at) : undefined;
  const confirmation = { yes: opts.yes, noTerminal: noTerminal('switchover') };
  ctx.needsConfirmation(confirmation); // refused before any host is contacted
  const session = await tolerantSession(ctx);
  const plan = await planSwitchover(session, opts.candidate, at);
  await ctx.confirm(`${capital(plan.what)}? Clients of the primary are disconnected for a few seconds.`, confirmation);
  ctx.out(`${plan.what}\n`);
  if (at) {
    const answer = await scheduleSwitchover(session, plan, opts.candidate, opts.at!);
    ctx.out(`Patroni scheduled the switchover ${answer}\nIt runs at ${at.toISOString()}; pgha status shows it until then.\n`);
    return EXIT.ok;
  }
  const steps = new Steps(ctx.out);
  const now = await switchoverNow(session, plan, opts.candidate, steps, opts.waitMs);
  ctx.out(`switchover done: ${plan.leader.name} -> ${now} in ${(steps.elapsedMs() / 1000).toFixed(1)}s\n`);
  return EXIT.ok;
}

export async function failover(ctx: CommandContext, opts: ChangeOptions & { candidate: string }): Promise<number> {
  await ctx.inventory();
  const confirmation = { yes: opts.yes, noTerminal: noTerminal('failover') };
  ctx.needsConfirmation(confirmation);
  const session = await tolerantSession(ctx);
  const plan = await planFailover(session, opts.candidate);
  if (plan.done) {
    ctx.out(`${plan.what}\n`);
    return EXIT.ok;
  }
  await ctx.confirm(`${capital(plan.what)}?`, confirmation);
  ctx.out(`${plan.what}\n`);
  const steps = new Steps(ctx.out);
  const now = await failoverNow(session, plan, steps, opts.waitMs);
  if (now !== plan.candidate.name) ctx.out(`note: Patroni elected ${now}, not ${plan.candidate.name}: it had started its own failover first\n`);
  ctx.out(`failover done: ${now} leads, in ${(steps.elapsedMs() / 1000).toFixed(1)}s\n`);
  return EXIT.ok;
}
