// What a component is: everything pgha knows about one part of the cluster, behind one interface.
// Flows never call a component's internals by name when the registry (index.ts) can do it for
// every component: packages, files, rollout stages and verify checks go through here.
import type { Rollout } from '../engine/index.js';
import type { Host, Inventory } from '../inventory/index.js';
import type { ComponentName, RenderedFile } from '../render/template.js';
import type { Session } from '../session/session.js';

export type { ComponentName, RenderedFile } from '../render/template.js';

/** Patroni's DCS section: etcd's v2 API below Patroni 3.0.3, etcd3 from then on (see patroni/version.ts). */
export type Dcs = 'etcd' | 'etcd3';

/** What a component renders a host's files from. */
export interface RenderInput {
  inv: Inventory;
  host: Host;
  dcs: Dcs;
}

/** What every component's rollout gets: the session, the rollout (stages, gates, check mode), the rendered files. */
export interface ApplyContext {
  session: Session;
  rollout: Rollout;
  dcs: Dcs;
  /** Rendered files of a host (for its roles only). */
  files(host: Host | string): RenderedFile[];
  /** Notes for the end of the run (pending restarts and the like). */
  notes: string[];
  /** PostgreSQL parameters this run changes (or would change) that take effect only after a restart. */
  pendingRestart: string[];
  /** The run restarts pending members itself afterwards (apply --restart-pending): no note about them. */
  restartPending?: boolean;
  /** The inventory file as the operator named it (for commands a note suggests). */
  inventoryFile?: string;
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
  /** Debian packages a host needs for this component (by its roles). */
  packages?(inv: Inventory, host: Host): string[];
  /**
   * The Debian packages that are this component's software on a host (by its roles): `pgha upgrade`
   * upgrades them, with the installed packages built from the same source, in this component's turn.
   */
  upgrades?(inv: Inventory, host: Host): string[];
  /** Every file this component writes on a host (by its roles). Needs inv.secrets. */
  files?(r: RenderInput): RenderedFile[];
  /** Rollout, first pass (registry order): files, users, directories; nothing that needs another component running. */
  prepare?(ctx: ApplyContext): Promise<void>;
  /** Rollout, second pass (registry order): services started, each behind its health gate. */
  start?(ctx: ApplyContext): Promise<void>;
  /** During Patroni's start: the leader runs, the replicas do not yet (e.g. the pgBackRest stanza, before a replica's base backup completes a WAL segment). */
  leaderUp?(ctx: ApplyContext): Promise<void>;
  /** Read-only checks of the running cluster (`pgha verify`), run in parallel with the others'. */
  verify?(session: Session): Promise<CheckResult>[];
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
