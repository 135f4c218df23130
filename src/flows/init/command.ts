// `pgha init`: writes a new inventory, its secrets file and (optionally) known_hosts, from a
// wizard on a terminal or from flags.
import type { CommandContext } from '../context.js';
import { runInit, type InitFlags } from './init.js';

export async function init(ctx: CommandContext, flags: InitFlags): Promise<number> {
  await runInit(flags, { tty: ctx.tty, out: ctx.out });
  return 0;
}
