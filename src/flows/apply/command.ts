// `pgha apply` and `pgha verify`. apply: bare Debian hosts -> a verified HA cluster: the packages
// stage, then every component's prepare and start stages in registry order, each behind its
// health gate, (with --restart-pending, the rolling restart of pending members,) then verify. Every step reads the host's state first and acts only on a
// difference, so a second run changes nothing.
import { createReporter, Rollout, StageFailed } from '../../engine/index.js';
import { restartPendingAfterApply } from '../../cluster/restart.js';
import { wantedDynamicConfig, type Json } from '../../components/patroni/config.js';
import { EXIT } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { formatChecks, packagesStage, renderHost, rolloutComponents, verifyCluster } from '../../components/index.js';
import { detectDcs, patroniTtlNote } from '../../components/patroni/version.js';
import type { ApplyContext, Dcs, RenderedFile } from '../../components/types.js';
import type { CommandContext } from '../../cli/context.js';
import { secretMasker } from '../../session/session.js';

export interface ApplyOptions {
  check?: boolean;
  verbose?: boolean;
  acceptNewHostKeys?: boolean;
  /** Then restart the members with a pending restart (pgha restart's runbook). */
  restartPending?: boolean;
  timeout?: number;
  maxTransactionAge?: number;
}

function renderAll(inv: Inventory, dcs: Dcs): Map<string, RenderedFile[]> {
  return new Map(inv.hosts.map((h) => [h.name, renderHost(inv, h.name, { dcs })]));
}

export async function apply(ctx: CommandContext, opts: ApplyOptions): Promise<number> {
  const inv = await ctx.inventory();
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv) });
  const started = Date.now();
  const session = await ctx.session({ acceptNewHostKeys: opts.acceptNewHostKeys, reporter });
  const rollout = new Rollout({ check: opts.check, reporter });
  try {
    // The files written before the packages do not depend on the DCS choice.
    const early = renderAll(inv, 'etcd');
    const notes: string[] = [];
    await packagesStage({ session, rollout, notes, files: (h) => early.get(typeof h === 'string' ? h : h.name) ?? [] });

    const { dcs, version, versions } = await detectDcs(session);
    ctx.out(`Patroni ${version}: DCS ${dcs === 'etcd' ? 'etcd (v2 API, compare-and-swap leader updates)' : 'etcd3'}\n`);
    const files = renderAll(inv, dcs);
    const actx: Omit<ApplyContext, 'leaderUp'> = { session, rollout, dcs, files: (h) => files.get(typeof h === 'string' ? h : h.name) ?? [], notes, pendingRestart: [], restartPending: opts.restartPending, inventoryFile: ctx.inventoryFile };
    const ttlNote = patroniTtlNote(versions, inv.timing.patroni.ttl);
    if (ttlNote) actx.notes.push(ttlNote);

    await rolloutComponents(actx);

    for (const note of actx.notes) ctx.out(`note: ${note}\n`);
    let code = rollout.finish();
    if (opts.restartPending && code === EXIT.ok) {
      // The parameters this run wants (its check mode plans with them: nothing is patched yet).
      const wanted = (leader: string) => ((wantedDynamicConfig({ ...actx, leaderUp: async () => {} }, inv.host(leader)).postgresql ?? {}) as { parameters?: Record<string, Json> }).parameters ?? {};
      await restartPendingAfterApply(session, ctx.out, { check: opts.check, changed: actx.pendingRestart, wantedParameters: wanted, timeoutSec: opts.timeout, maxTransactionAgeSec: opts.maxTransactionAge });
    }
    if (!opts.check) {
      const checks = await verifyCluster(session);
      ctx.out(`VERIFY\n${formatChecks(checks)}\n`);
      if (checks.some((c) => !c.ok)) code = EXIT.failed;
    }
    ctx.out(`${opts.check ? 'check' : 'apply'} finished in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    return code;
  } catch (err) {
    // The recap shows which host failed where; the error boundary prints the reason.
    if (err instanceof StageFailed) rollout.finish();
    throw err;
  }
}

export async function verify(ctx: CommandContext): Promise<number> {
  const checks = await verifyCluster(await ctx.session());
  ctx.out(`${formatChecks(checks)}\n`);
  return checks.some((c) => !c.ok) ? EXIT.failed : EXIT.ok;
}
