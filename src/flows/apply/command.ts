// `pgha apply` and `pgha verify`. apply: bare Debian hosts -> a verified HA cluster: the packages
// stage, then every component's prepare and start stages in registry order, each behind its
// health gate, then verify. Every step reads the host's state first and acts only on a
// difference, so a second run changes nothing.
import { createReporter, Rollout, StageFailed } from '../../engine/index.js';
import { EXIT } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { checkPlatform, formatChecks, packagesStage, renderHost, rolloutComponents, verifyCluster } from '../../components/index.js';
import { readClusterRelease } from '../../components/base/release.js';
import { postgresMajor } from '../../components/patroni/paths.js';
import { effectiveTiming, raisedTimingNote, timingSummary } from '../../components/patroni/timing.js';
import { detectPatroni } from '../../components/patroni/version.js';
import type { ApplyContext, Dcs, Platform, RenderedFile } from '../../components/types.js';
import type { CommandContext } from '../context.js';
import { secretMasker } from '../../session/session.js';

export interface ApplyOptions {
  check?: boolean;
  verbose?: boolean;
  acceptNewHostKeys?: boolean;
}

function renderAll(inv: Inventory, dcs: Dcs, platform: Platform): Map<string, RenderedFile[]> {
  return new Map(inv.hosts.map((h) => [h.name, renderHost(inv, h.name, { dcs, platform })]));
}

export async function apply(ctx: CommandContext, opts: ApplyOptions): Promise<number> {
  const inv = await ctx.inventory();
  const reporter = await createReporter({ verbose: opts.verbose, masker: secretMasker(inv) });
  const started = Date.now();
  const session = await ctx.session({ acceptNewHostKeys: opts.acceptNewHostKeys, reporter });
  const rollout = new Rollout({ check: opts.check, reporter });
  try {
    // The hosts' release decides packages and configuration: one release, or a refusal before anything changes.
    const release = await readClusterRelease(session);
    const expected = await detectPatroni(session, release.name);
    checkPlatform(inv, { release, patroniVersions: expected.versions }, expected.dcs);
    const major = postgresMajor(inv, release);
    ctx.out(`${release.label} on every host: PostgreSQL ${major}${inv.cluster.postgres_version === undefined ? " (the release's default)" : ''}\n`);

    // The files written before the packages do not depend on the DCS choice.
    const early = renderAll(inv, expected.dcs, { release, patroniVersions: expected.versions });
    await packagesStage({ session, rollout, release, files: (h) => early.get(typeof h === 'string' ? h : h.name) ?? [] });

    const { dcs, version, versions } = await detectPatroni(session, release.name);
    const platform: Platform = { release, patroniVersions: versions };
    checkPlatform(inv, platform, dcs);
    ctx.out(`Patroni ${version}: DCS ${dcs === 'etcd' ? 'etcd (v2 API, compare-and-swap leader updates)' : 'etcd3'}\n`);
    const timing = effectiveTiming(inv.timing.patroni, versions);
    ctx.out(`${timingSummary(inv.timing, timing)}\n`);
    const files = renderAll(inv, dcs, platform);
    const actx: Omit<ApplyContext, 'leaderUp'> = { session, rollout, dcs, platform, files: (h) => files.get(typeof h === 'string' ? h : h.name) ?? [], notes: [], inventoryFile: ctx.inventoryFile };
    const raised = raisedTimingNote(inv.timing, timing);
    if (raised) actx.notes.push(raised);
    await rolloutComponents(actx);

    for (const note of actx.notes) ctx.out(`note: ${note}\n`);
    let code = rollout.finish();
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
