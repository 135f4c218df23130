// `pgha reinit MEMBER`: a replica's data rebuilt from scratch (Patroni's reinitialize), checked
// first (refused on the leader), confirmed (or --yes), then waited for until it streams again.
import { Steps } from '../../engine/index.js';
import { EXIT } from '../../errors.js';
import { planReinit, reinitNow } from '../../cluster/reinit.js';
import type { CommandContext } from '../context.js';

export interface ReinitOptions {
  member: string;
  yes?: boolean;
  waitMs?: number;
}

export async function reinit(ctx: CommandContext, opts: ReinitOptions): Promise<number> {
  await ctx.inventory();
  const confirmation = {
    yes: opts.yes,
    noTerminal: `reinit replaces ${opts.member}'s data and needs a confirmation, but there is no terminal to ask on: add --yes to go ahead without asking`,
  };
  ctx.needsConfirmation(confirmation); // refused before any host is contacted
  const session = await (await ctx.reach()).session();
  for (const [name, why] of session.unreachable) ctx.out(`note: ${name} is unreachable: ${why}\n`);
  const plan = await planReinit(session, opts.member);
  await ctx.confirm(`${plan.what[0].toUpperCase()}${plan.what.slice(1)}? It serves no reads meanwhile.`, confirmation);
  ctx.out(`${plan.what}\n`);
  const steps = new Steps(ctx.out);
  await reinitNow(session, plan, steps, opts.waitMs);
  ctx.out(`reinit done: ${opts.member} rebuilt and streaming from ${plan.leader} in ${(steps.elapsedMs() / 1000).toFixed(1)}s\n`);
  return EXIT.ok;
}
