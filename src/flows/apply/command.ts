// `pgha apply` and `pgha verify`. apply: bare Debian hosts -> a verified HA cluster, and later any
// edit of the inventory (hosts that join or leave a role included) carried out on the live
// cluster; src/cluster/converge.ts does the work. verify: every component's read-only checks.
import { createReporter } from '../../engine/index.js';
import { EXIT } from '../../errors.js';
import { formatChecks, verifyCluster } from '../../components/index.js';
import { converge } from '../../cluster/converge.js';
import type { CommandContext } from '../../cli/context.js';
import { secretMasker } from '../../session/session.js';

export interface ApplyOptions {
  check?: boolean;
  verbose?: boolean;
  acceptNewHostKeys?: boolean;
  purge?: boolean;
}

export async function apply(ctx: CommandContext, opts: ApplyOptions): Promise<number> {
  const inv = await ctx.inventory();
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv) });
  const session = await ctx.session({ acceptNewHostKeys: opts.acceptNewHostKeys, reporter });
  return converge(session, reporter, ctx.out, { check: opts.check, purge: opts.purge, inventoryFile: ctx.inventoryFile });
}

export async function verify(ctx: CommandContext): Promise<number> {
  const checks = await verifyCluster(await ctx.session());
  ctx.out(`${formatChecks(checks)}\n`);
  return checks.some((c) => !c.ok) ? EXIT.failed : EXIT.ok;
}
