// Convergence end to end, shared by `pgha apply` and `pgha replace`: the live cluster read and the
// topology plan made (or refused) before any host is touched, the packages stage, every
// component's prepare and start stages behind their health gates (with the plan's steps at their
// points), then verify. Every step reads the host first and acts only on a difference.
import { checkPlatform, formatChecks, packagesStage, renderHost, rolloutComponents, verifyCluster } from '../components/index.js';
import { readClusterRelease } from '../components/base/release.js';
import { wantedDynamicConfig, type Json } from '../components/patroni/config.js';
import { postgresMajor } from '../components/patroni/paths.js';
import { effectiveTiming, raisedTimingNote, timingSummary } from '../components/patroni/timing.js';
import { detectPatroni } from '../components/patroni/version.js';
import type { ApplyContext, CheckResult, Dcs, EtcdClusterState, Platform, RenderedFile } from '../components/types.js';
import { Rollout, StageFailed, type Reporter } from '../engine/index.js';
import { EXIT, InputError } from '../errors.js';
import type { Inventory } from '../inventory/index.js';
import type { Session } from '../session/session.js';
import { restartPendingAfterApply } from './restart.js';
import { planTopology, readTopologyFacts, TopologyPlan } from './topology.js';

export interface ConvergeOptions {
  /** --check: show the plan and every change, change nothing. */
  check?: boolean;
  /** --purge: a PostgreSQL host that leaves loses its data directory too. */
  purge?: boolean;
  /** `pgha replace HOST`: that host's machine was rebuilt (its etcd member is re-created). */
  replace?: string;
  /** The inventory file as the operator named it (for commands a note suggests). */
  inventoryFile?: string;
  /** The rollout to record into (apply's --limit and --json read it afterwards); a new one by default. */
  rollout?: Rollout;
  /** Notes said at the end (apply's --json lists them); collected here. */
  notes?: string[];
  /** --restart-pending: then restart the members with a pending restart (pgha restart's runbook). */
  restartPending?: boolean;
  /** Seconds each restarted member may take to come back (--timeout). */
  timeout?: number;
  /** The restart's preflight: no transaction open longer than this, in seconds (--max-transaction-age). */
  maxTransactionAge?: number;
}

export interface ConvergeResult {
  code: number;
  /** verify's checks (none in check mode). */
  checks?: CheckResult[];
}

function renderAll(inv: Inventory, dcs: Dcs, platform: Platform, etcdState: EtcdClusterState): Map<string, RenderedFile[]> {
  return new Map(inv.hosts.map((h) => [h.name, renderHost(inv, h.name, { dcs, platform, etcdState })]));
}

/** Converges the session's hosts to the inventory (a refused plan throws an InputError). */
export async function converge(session: Session, reporter: Reporter, out: (text: string) => void, opts: ConvergeOptions): Promise<ConvergeResult> {
  const { inv } = session;
  const started = Date.now();
  const rollout = opts.rollout ?? new Rollout({ check: opts.check, reporter });
  const notes = opts.notes ?? [];
  // The hosts' release decides packages and configuration: one release, or a refusal before anything changes.
  const release = await readClusterRelease(session);
  const expected = await detectPatroni(session, release.name);
  checkPlatform(inv, { release, patroniVersions: expected.versions }, expected.dcs);
  out(`${release.label} on every host: PostgreSQL ${postgresMajor(inv, release)}${inv.cluster.postgres_version === undefined ? " (the release's default)" : ''}\n`);
  // The live cluster and the plan, before any host is touched.
  const facts = await readTopologyFacts(session, { release, replace: opts.replace, purge: opts.purge });
  const topology = new TopologyPlan(facts, planTopology(facts, inv), reporter);
  out(topology.describe(opts.check ?? false));
  // A host joining or leaving changes the others too (etcd membership, pg_hba, HAProxy's servers).
  if (rollout.limit && topology.steps.length) {
    throw new InputError(`--limit: hosts join or leave the cluster in this apply (${topology.steps.length} topology change(s) above), which changes the other hosts too: run apply without --limit`);
  }
  const etcdState: EtcdClusterState = facts.etcd ? 'existing' : 'new';
  try {
    // The files written before the packages do not depend on the DCS choice.
    const early = renderAll(inv, expected.dcs, { release, patroniVersions: expected.versions }, etcdState);
    await packagesStage({ session, rollout, notes, release, files: (h) => early.get(typeof h === 'string' ? h : h.name) ?? [] });

    const { dcs, version, versions } = await detectPatroni(session, release.name);
    const platform: Platform = { release, patroniVersions: versions };
    checkPlatform(inv, platform, dcs);
    out(`Patroni ${version}: DCS ${dcs === 'etcd' ? 'etcd (v2 API, compare-and-swap leader updates)' : 'etcd3'}\n`);
    const timing = effectiveTiming(inv.timing.patroni, versions);
    out(`${timingSummary(inv.timing, timing)}\n`);
    const files = renderAll(inv, dcs, platform, etcdState);
    const actx: Omit<ApplyContext, 'leaderUp'> = {
      session,
      rollout,
      dcs,
      platform,
      files: (h) => files.get(typeof h === 'string' ? h : h.name) ?? [],
      notes,
      pendingRestart: [],
      passed: new Map(),
      restartPending: opts.restartPending,
      inventoryFile: opts.inventoryFile,
      topology,
    };
    const raised = raisedTimingNote(inv.timing, timing);
    if (raised) actx.notes.push(raised);

    await rolloutComponents(actx);
    const missed = opts.check ? [] : topology.notRun();
    if (missed.length) throw new Error(`topology steps never ran (no component ran their phase): ${missed.map((s) => s.text).join('; ')}`);

    for (const note of actx.notes) out(`note: ${note}\n`);
    let code = rollout.finish();
    if (opts.restartPending && code === EXIT.ok) {
      // The parameters this run wants (its check mode plans with them: nothing is patched yet).
      const wanted = (leader: string) => ((wantedDynamicConfig({ ...actx, leaderUp: async () => {} }, inv.host(leader)).postgresql ?? {}) as { parameters?: Record<string, Json> }).parameters ?? {};
      await restartPendingAfterApply(session, out, { check: opts.check, changed: actx.pendingRestart, wantedParameters: wanted, timeoutSec: opts.timeout, maxTransactionAgeSec: opts.maxTransactionAge });
    }
    let checks: CheckResult[] | undefined;
    if (!opts.check) {
      // After restarts (--restart-pending: a switchover, maybe) every check runs again.
      checks = await verifyCluster(session, opts.restartPending ? undefined : actx.passed);
      out(`VERIFY\n${formatChecks(checks)}\n`);
      if (checks.some((c) => !c.ok)) code = EXIT.failed;
    }
    out(`${opts.check ? 'check' : 'apply'} finished in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    return { code, checks };
  } catch (err) {
    // The recap shows which host failed where; the error boundary prints the reason.
    if (err instanceof StageFailed) rollout.finish();
    throw err;
  }
}
