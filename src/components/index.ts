// The components of a pgha cluster, in rollout order. Adding one is its folder under
// src/components/ (and templates/) plus one line in COMPONENTS; apply, render, packages and
// verify pick it up from here.
import { packages } from '../engine/index.js';
import type { Host, Inventory } from '../inventory/index.js';
import { fileOp } from '../render/op.js';
import type { RenderedFile } from '../render/template.js';
import type { Session } from '../session/session.js';
import { base } from './base/index.js';
import { pinDriftOp } from './base/apt.js';
import { databases } from './databases/index.js';
import { etcd } from './etcd/index.js';
import { haproxy } from './haproxy/index.js';
import { monitoring } from './monitoring/index.js';
import { notifications } from './notifications/index.js';
import { patroni } from './patroni/index.js';
import { pgbackrest } from './pgbackrest/index.js';
import { pgbouncer } from './pgbouncer/index.js';
import { vip } from './vip/index.js';
import type { Release } from './base/release.js';
import { RELEASES, ReleaseError } from './base/release.js';
import { TOPOLOGY_PHASES, type ApplyContext, type CheckResult, type Component, type ComponentName, type Dcs, type EtcdClusterState, type Platform, type TopologyFacts, type TopologyStep } from './types.js';
import { tls } from './tls/index.js';

// tls before the services: their certificates exist before any of them starts (or restarts).
export const COMPONENTS: readonly Component[] = [base, tls, etcd, notifications, patroni, vip, haproxy, databases, pgbouncer, pgbackrest, monitoring];

/** Every Debian package a host's roles need on the cluster's release, from every component. */
export function packagesFor(inv: Inventory, h: Host, release: Release): string[] {
  return [...new Set(COMPONENTS.flatMap((c) => c.packages?.(inv, h, release) ?? []))];
}

/** Per component, the Debian packages that are its software on a host on the cluster's release (what `pgha upgrade` upgrades). */
export function upgradesFor(inv: Inventory, h: Host, release: Release): { component: ComponentName; packages: string[] }[] {
  return COMPONENTS.flatMap((c) => {
    const packages = c.upgrades?.(inv, h, release) ?? [];
    return packages.length ? [{ component: c.name, packages }] : [];
  });
}

/**
 * Every file pgha writes on `hostName`, for its roles only. Needs inv.secrets. Without a platform:
 * Debian 12 with the Patroni of the DCS given (3.0.2 for etcd:, 3.0.3 for etcd3:), as `pgha render`
 * shows by default; apply always passes the platform it read from the hosts.
 */
export function renderHost(inv: Inventory, hostName: string, opts: { dcs: Dcs; platform?: Platform; etcdState?: EtcdClusterState }): RenderedFile[] {
  if (!inv.secrets) throw new Error('rendering needs the secrets: load the inventory with its secrets file');
  const host = inv.host(hostName);
  const platform = opts.platform ?? { release: RELEASES.bookworm, patroniVersions: [opts.dcs === 'etcd' ? '3.0.2' : '3.0.3'] };
  return COMPONENTS.flatMap((c) => c.files?.({ inv, host, dcs: opts.dcs, platform, etcdState: opts.etcdState }) ?? []);
}

/** Every component's objection to this platform, as one refusal (exit 2, nothing changed); none: returns. */
export function checkPlatform(inv: Inventory, platform: Platform, dcs: Dcs): void {
  const problems = COMPONENTS.flatMap((c) => c.platformProblem?.(inv, platform, dcs) ?? []);
  if (problems.length) throw new ReleaseError(problems.join('; '));
}

/** Every component's topology steps for these facts, in the order apply runs them (throws an InputError to refuse). */
export function planComponents(facts: TopologyFacts, inv: Inventory): TopologyStep[] {
  const steps = COMPONENTS.flatMap((c) => c.plan?.(facts, inv) ?? []);
  // A stable sort: within a phase, each component's own order.
  return steps.map((s, i) => ({ s, i })).sort((a, b) => TOPOLOGY_PHASES.indexOf(a.s.phase) - TOPOLOGY_PHASES.indexOf(b.s.phase) || a.i - b.i).map((x) => x.s);
}

/**
 * The packages stage: the files that must exist before any package is installed (apt settings and
 * pins, Debian's "no default cluster" setting, or postgresql-NN creates and starts its own
 * cluster), then every missing package in one apt call per host (at its pinned version, if the
 * inventory pins one), all hosts in parallel; pinned packages installed at another version are noted.
 */
export async function packagesStage(ctx: Pick<ApplyContext, 'session' | 'rollout' | 'files' | 'notes'> & { release: Release }): Promise<void> {
  const { session, rollout } = ctx;
  const versions = session.inv.packages.versions;
  await rollout.stage('packages', [...session.conns.values()], (conn) => {
    const h = session.inv.host(conn.target.name);
    return [
      ...ctx.files(h).filter((f) => f.beforePackages).map((f) => fileOp(f)),
      packages(packagesFor(session.inv, h, ctx.release), { versions }),
      // Pinned packages installed at another version are reported, never moved (pgha upgrade does).
      ...(Object.keys(versions).length ? [pinDriftOp(versions, (note) => ctx.notes.push(note))] : []),
    ];
  });
}

/** Every component's prepare, then every component's start (registry order both times). */
export async function rolloutComponents(ctx: Omit<ApplyContext, 'leaderUp'>): Promise<void> {
  const full: ApplyContext = {
    ...ctx,
    leaderUp: async () => {
      for (const c of COMPONENTS) await c.leaderUp?.(full);
    },
  };
  // A leader that leaves is switched away from before any file stops naming it.
  await full.topology.run('before', full);
  for (const c of COMPONENTS) await c.prepare?.(full);
  for (const c of COMPONENTS) await c.start?.(full);
}

// The components an inventory turns on; their checks run after the others'.
const OPTIONAL = new Set<string>(['notifications', 'vip', 'databases', 'pgbouncer', 'monitoring']);

/**
 * `pgha verify`: every component's checks, at once (verify costs the slowest, not the sum), the
 * optional components' in a second wave: sshd refuses more than 10 sessions on one connection.
 */
export async function verifyCluster(session: Session, passed?: ReadonlyMap<string, number>): Promise<CheckResult[]> {
  const wave = (optional: boolean) => Promise.all(COMPONENTS.filter((c) => OPTIONAL.has(c.name) === optional).flatMap((c) => c.verify?.(session, passed) ?? []));
  const core = await wave(false);
  const optional = await wave(true);
  // In registry order, as before.
  const order = (r: CheckResult) => COMPONENTS.findIndex((c) => c.name === r.component);
  return [...core, ...optional].sort((a, b) => order(a) - order(b));
}

export function formatChecks(results: CheckResult[]): string {
  return results.map((r) => `${r.ok ? 'ok    ' : 'FAILED'} ${r.component}${r.host ? ` (${r.host})` : ''}: ${r.detail}`).join('\n');
}
