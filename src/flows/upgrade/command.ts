// `pgha upgrade`: a minor upgrade of the stack's packages (or, with --all, of everything apt-get
// upgrade would do), to the newest versions the hosts' sources offer or to the inventory's pins.
// The cluster's preflight first (nothing touched when it fails), then the package lists and the
// plan (what changes on each host, in what order), a confirmation, and the upgrade runbook.
import { createReporter, Rollout, Steps } from '../../engine/index.js';
import { EXIT } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { secretMasker } from '../../session/session.js';
import { formatChecks, verifyCluster } from '../../components/index.js';
import { DEFAULT_MAX_TRANSACTION_AGE_SEC, gatherPreflight, preflightFailure, preflightProblems } from '../../cluster/preflight.js';
import { aptSettingsStage, describeUpgrade, planPostgresRoll, planUpgrade, refreshLists, runUpgrade, serverVersion, versionsTable } from '../../cluster/upgrade.js';
import { hostChanges } from '../../cluster/upgrade-plan.js';
import { readClusterRelease } from '../../components/base/release.js';
import { DEFAULT_MEMBER_TIMEOUT_SEC } from '../../cluster/restart.js';

export interface UpgradeCommandOptions {
  check?: boolean;
  yes?: boolean;
  all?: boolean;
  verbose?: boolean;
  timeout?: number;
  maxTransactionAge?: number;
}

export async function upgrade(ctx: CommandContext, opts: UpgradeCommandOptions): Promise<number> {
  const inv = await ctx.inventory();
  const confirmation = {
    yes: opts.yes,
    noTerminal: 'upgrade installs packages, restarts services and switches the leader over, and needs a confirmation, but there is no terminal to ask on: add --yes to go ahead without asking',
  };
  if (!opts.check) ctx.needsConfirmation(confirmation); // refused before any host is contacted
  const started = Date.now();
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv), log: ctx.log });
  const session = await ctx.session({ reporter });
  // The hosts' release decides the packages (postgresql-NN): one release, or a refusal before anything changes.
  const release = await readClusterRelease(session);

  // The cluster first: a refusal here comes before anything is touched, package lists included.
  const limits = { maxLagBytes: inv.patroni.maximum_lag_on_failover, maxTransactionAgeSec: opts.maxTransactionAge ?? DEFAULT_MAX_TRANSACTION_AGE_SEC, backups: true };
  const clusterProblems = preflightProblems(await gatherPreflight(session, limits), limits);
  if (clusterProblems.length && !opts.check) throw preflightFailure('upgrade', clusterProblems);

  ctx.out('refreshing the package lists on every host (apt-get update)\n');
  await refreshLists(session, reporter);
  const plans = await planUpgrade(session, { all: opts.all, release });
  const roll = await planPostgresRoll(session, plans);
  const what = `upgrade of cluster ${inv.cluster.name}${opts.all ? ' (--all: everything apt-get upgrade would do, too)' : ''}`;
  ctx.out(`${what}, to ${Object.keys(inv.packages.versions).length ? 'the pinned versions, else ' : ''}the newest versions the hosts' sources offer:\n${describeUpgrade(plans, roll)}\n`);
  const problems = [...clusterProblems, ...plans.flatMap((p) => p.problems)];
  const nothing = plans.every((p) => hostChanges(p).length === 0);

  const rollout = new Rollout({ check: true, reporter });
  if (opts.check) {
    await aptSettingsStage(session, rollout, release);
    ctx.out(problems.length ? `preflight would refuse:\n${problems.map((p) => `  ${p}`).join('\n')}\n` : 'preflight: ok (check mode: nothing was changed)\n');
    return problems.length ? EXIT.failed : EXIT.ok;
  }
  if (problems.length) throw preflightFailure('upgrade', problems, 'no package was changed');
  if (nothing) {
    await aptSettingsStage(session, new Rollout({ reporter }), release);
    ctx.out('nothing to upgrade: every host runs the newest (or pinned) versions\n');
    return EXIT.ok;
  }
  await ctx.confirm(`Upgrade the packages above${roll?.leader?.switchover ? `, switching the leader ${roll.leader.name} over` : ''}?`, confirmation);
  await aptSettingsStage(session, new Rollout({ reporter }), release);
  const steps = new Steps(ctx.out);
  const result = await runUpgrade(session, plans, roll, steps, { release, all: opts.all, timeoutSec: opts.timeout ?? DEFAULT_MEMBER_TIMEOUT_SEC });
  const checks = await verifyCluster(session);
  ctx.out(`VERIFY\n${formatChecks(checks)}\n`);
  ctx.out(`versions (before -> after):\n${versionsTable(result.versions, inv.hosts)}\n`);
  const running = await Promise.all(session.withRole('postgres').map(async (c) => `${c.target.name} ${await serverVersion(inv, c).catch((e: unknown) => `unknown (${String(e)})`)}`));
  ctx.out(`PostgreSQL server_version: ${running.join('; ')}\n`);
  ctx.out(`upgrade done in ${((Date.now() - started) / 1000).toFixed(1)}s\n${steps.summary()}`);
  return checks.some((c) => !c.ok) ? EXIT.failed : EXIT.ok;
}
