// `pgha apply` and `pgha verify`. apply: bare Debian hosts -> a verified HA cluster: the packages
// stage, then every component's prepare and start stages in registry order, each behind its
// health gate, then verify. Every step reads the host's state first and acts only on a
// difference, so a second run changes nothing.
import { createReporter, Rollout, StageFailed, Steps } from '../../engine/index.js';
import type { Session } from '../../session/session.js';
import { clusterView } from '../../cluster/leader-change.js';
import { describeRoll } from '../../cluster/roll.js';
import { planRestart, runRestart, waitForPendingFlags } from '../../cluster/restart.js';
import { leaderOf } from '../../components/patroni/cluster.js';
import { wantedDynamicConfig, type Json } from '../../components/patroni/config.js';
import { DEFAULT_MAX_TRANSACTION_AGE_SEC, gatherPreflight, preflightFailure, preflightProblems } from '../../cluster/preflight.js';
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
      const wanted = (leader: string) => ((wantedDynamicConfig({ ...actx, leaderUp: async () => {} }, inv.host(leader)).postgresql ?? {}) as Record<string, Record<string, Json>>).parameters ?? {};
      await restartPending(ctx, session, actx.pendingRestart, opts, wanted);
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

/**
 * --restart-pending: after the stages, the members with a pending restart are restarted as
 * `pgha restart` does (replicas, a switchover, the old leader), behind the same preflight. In
 * check mode, the order it would take.
 */
async function restartPending(ctx: CommandContext, session: Session, changed: string[], opts: ApplyOptions, wantedParameters: (leader: string) => Record<string, Json>): Promise<void> {
  const { inv } = session;
  if (opts.check) {
    // Nothing is pending yet when this run's change is what needs the restart: every member will be.
    const cluster = await clusterView(session);
    const leader = leaderOf(cluster);
    const after = changed.length && leader ? { members: cluster.members.map((m) => m.name), parameters: wantedParameters(leader.name) } : undefined;
    const rp = await planRestart(session, { after });
    if (!rp.todo.length) return void ctx.out('restart pending: nothing to restart\n');
    ctx.out(`restart pending${changed.length ? ` (${changed.join(', ')})` : ''}: would restart ${rp.todo.join(', ')}:\n${describeRoll(rp.plan, (m) => `restart ${m}`).join('\n')}\n`);
    return;
  }
  if (changed.length) await waitForPendingFlags(session);
  const rp = await planRestart(session, {});
  if (!rp.todo.length) return void ctx.out('restart pending: nothing to restart\n');
  ctx.out(`restart pending on ${rp.todo.join(', ')}:\n${describeRoll(rp.plan, (m) => `restart ${m}`).join('\n')}\n`);
  const limits = { maxLagBytes: inv.patroni.maximum_lag_on_failover, maxTransactionAgeSec: opts.maxTransactionAge ?? DEFAULT_MAX_TRANSACTION_AGE_SEC, backups: false };
  const problems = preflightProblems(await gatherPreflight(session, limits), limits);
  if (problems.length) throw preflightFailure('restart pending', problems, 'the changes above are applied; no member was restarted');
  const steps = new Steps(ctx.out);
  const res = await runRestart(session, rp, steps, { timeoutSec: opts.timeout ?? 300 });
  ctx.out(`restart pending done in ${(steps.elapsedMs() / 1000).toFixed(1)}s: ${res.done.join(', ')}${res.leaderAfter !== res.leaderBefore ? `; leader ${res.leaderBefore} -> ${res.leaderAfter}` : ''}\n`);
}

export async function verify(ctx: CommandContext): Promise<number> {
  const checks = await verifyCluster(await ctx.session());
  ctx.out(`${formatChecks(checks)}\n`);
  return checks.some((c) => !c.ok) ? EXIT.failed : EXIT.ok;
}
