// What a component is: everything pgha knows about one part of the cluster, behind one interface.
// Flows never call a component's internals by name when the registry (index.ts) can do it for
// every component: packages, files, rollout stages and verify checks go through here.
import type { Rollout } from '../engine/index.js';
import type { Host, Inventory } from '../inventory/index.js';
import type { ComponentName, RenderedFile } from '../render/template.js';
import type { Session } from '../session/session.js';
import type { Release } from './base/release.js';
import type { EtcdLive } from './etcd/membership.js';
import type { PatroniCluster, Streaming } from './patroni/cluster.js';
import type { StanzaInfo } from './pgbackrest/info.js';

export type { ComponentName, RenderedFile } from '../render/template.js';

/** Patroni's DCS section: etcd's v2 API below Patroni 3.0.3, etcd3 from then on (see patroni/version.ts). */
export type Dcs = 'etcd' | 'etcd3';

/**
 * What the cluster's hosts run, read from them before planning: one Debian release (each
 * component picks its packages and configuration for it from its own per-release table) and the
 * Patroni version of the database hosts (the DCS section and the timing rules follow from it).
 */
export interface Platform {
  release: Release;
  /** Every database host's Patroni (installed, or what apt would install, or the release's). */
  patroniVersions: string[];
}
/** etcd's ETCD_INITIAL_CLUSTER_STATE: "new" to bootstrap a cluster, "existing" once one runs. */
export type EtcdClusterState = 'new' | 'existing';

/** What a component renders a host's files from. */
export interface RenderInput {
  inv: Inventory;
  host: Host;
  dcs: Dcs;
  platform: Platform;
  /** Default "new" (a cluster to bootstrap, as `pgha render` shows it); apply says "existing" once etcd runs. */
  etcdState?: EtcdClusterState;
}

// ---------------------------------------------------------------- day 2: the topology plan

/**
 * Where a topology step runs in apply, in this order: before the first file is written (a
 * leader that leaves is switched away from), inside a component's prepare or start (after its
 * own files), or at the end of Patroni's start (members that leave).
 */
export const TOPOLOGY_PHASES = ['before', 'etcd.prepare', 'haproxy.prepare', 'etcd.start', 'patroni.start', 'patroni.leave', 'haproxy.start', 'pgbackrest.start'] as const;
export type TopologyPhase = (typeof TOPOLOGY_PHASES)[number];

/** One change to the live cluster's membership: a line of the plan, and what carries it out. */
export interface TopologyStep {
  phase: TopologyPhase;
  /** The plan's line, also printed when the step starts. */
  text: string;
  run(ctx: ApplyContext): Promise<void>;
}

/** A service's state on a host (systemctl is-active / is-enabled). */
export interface ServiceFacts {
  active: boolean;
  enabled: boolean;
}

/** What a host runs of pgha's roles, read before anything changes. */
export interface HostRoleFacts {
  patroni: ServiceFacts & { config: boolean };
  etcd: ServiceFacts & { data: boolean };
  haproxy: ServiceFacts & { pgha: boolean };
  /** A PostgreSQL data directory (PG_VERSION) at the inventory's data_dir. */
  pgData: boolean;
}

/** The live cluster as apply found it, before touching any host (src/cluster/topology.ts reads it). */
export interface TopologyFacts {
  /** The cluster's Debian release (read before the plan; paths such as the data directory follow from it). */
  release: Release;
  /** etcd's membership; null when no etcd answers (a cluster to bootstrap). */
  etcd: EtcdLive | null;
  /** Patroni's view (GET /cluster) and who streams from the leader; null when no Patroni answers. */
  patroni: { cluster: PatroniCluster; streaming?: Streaming } | null;
  /** Every inventory host's role facts. */
  hosts: Map<string, HostRoleFacts>;
  /** `pgha replace HOST`: the host whose machine was rebuilt. */
  replace?: string;
  /** `--purge`: a PostgreSQL host that leaves loses its data directory too. */
  purge: boolean;
  /** When the repository host is being replaced: whether its repository has the stanza, and the backup list etcd kept of it. */
  repository?: { exists: boolean; recorded: StanzaInfo | null };
}

export interface Topology {
  facts: TopologyFacts;
  /** Every step, in the order they run. */
  steps: TopologyStep[];
  /** Runs the steps of one phase (announced and timed; in check mode none runs). */
  run(phase: TopologyPhase, ctx: ApplyContext): Promise<void>;
}

/** What every component's rollout gets: the session, the rollout (stages, gates, check mode), the rendered files. */
export interface ApplyContext {
  session: Session;
  rollout: Rollout;
  dcs: Dcs;
  platform: Platform;
  /** Rendered files of a host (for its roles only). */
  files(host: Host | string): RenderedFile[];
  /** Notes for the end of the run (pending restarts and the like). */
  notes: string[];
  /** PostgreSQL parameters this run changes (or would change) that take effect only after a restart. */
  pendingRestart: string[];
  /** Checks this run's gates passed (name -> when): verify at its end need not pay for them again. */
  passed: Map<string, number>;
  /** The run restarts pending members itself afterwards (apply --restart-pending): no note about them. */
  restartPending?: boolean;
  /** The inventory file as the operator named it (for commands a note suggests). */
  inventoryFile?: string;
  /** The membership changes of this run (empty for a new cluster or an unchanged one). */
  topology: Topology;
  /**
   * Patroni's start calls this once the first member leads and before the others start: every
   * component's `leaderUp` (the registry fills it in). Not called in check mode.
   */
  leaderUp(): Promise<void>;
}

/** One verify check: its component, the host it concerns, and what it found. */
export interface CheckResult {
  component: ComponentName;
  host?: string;
  ok: boolean;
  detail: string;
}

export interface Component {
  name: ComponentName;
  /** Debian packages a host needs for this component (by its roles), on the cluster's release. */
  packages?(inv: Inventory, host: Host, release: Release): string[];
  /** Why this component cannot run on this platform with this inventory (nothing is changed then), or null. */
  platformProblem?(inv: Inventory, platform: Platform, dcs: Dcs): string | null;
  /**
   * The Debian packages that are this component's software on a host (by its roles), on the
   * cluster's release: `pgha upgrade` upgrades them, with the installed packages built from the
   * same source, in this component's turn.
   */
  upgrades?(inv: Inventory, host: Host, release: Release): string[];
  /** Every file this component writes on a host (by its roles). Needs inv.secrets. */
  files?(r: RenderInput): RenderedFile[];
  /** Rollout, first pass (registry order): files, users, directories; nothing that needs another component running. */
  prepare?(ctx: ApplyContext): Promise<void>;
  /** Rollout, second pass (registry order): services started, each behind its health gate. */
  start?(ctx: ApplyContext): Promise<void>;
  /** During Patroni's start: the leader runs, the replicas do not yet (e.g. the pgBackRest stanza, before a replica's base backup completes a WAL segment). */
  leaderUp?(ctx: ApplyContext): Promise<void>;
  /**
   * Read-only checks of the running cluster (`pgha verify`), run in parallel with the others'.
   * `passed`: what the same run's gates have just checked (apply), which a check may report instead of repeating.
   */
  verify?(session: Session, passed?: ReadonlyMap<string, number>): Promise<CheckResult>[];
  /**
   * Day 2: this component's changes to a live cluster's membership (hosts that join or leave its
   * role), from facts read before any host is touched. A change that cannot be made safely is
   * refused here (an InputError: exit 2, nothing changed).
   */
  plan?(facts: TopologyFacts, inv: Inventory): TopologyStep[];
}

/** The rendered file at `path` on `host`; a missing one is a bug in the component. */
export function renderedFile(ctx: ApplyContext, host: Host | string, path: string): RenderedFile {
  const f = ctx.files(host).find((x) => x.path === path);
  if (!f) throw new Error(`no rendered ${path} for ${typeof host === 'string' ? host : host.name}`);
  return f;
}

/** Runs a check; a thrown error is the check's failure (its first line). */
export async function check(component: ComponentName, host: string | undefined, fn: () => Promise<string>): Promise<CheckResult> {
  try {
    return { component, host, ok: true, detail: await fn() };
  } catch (err) {
    return { component, host, ok: false, detail: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}
