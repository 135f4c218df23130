// The components of a pgha cluster, in rollout order. Adding one is its folder under
// src/components/ (and templates/) plus one line in COMPONENTS; apply, render, packages and
// verify pick it up from here.
import { packages } from '../engine/index.js';
import type { Host, Inventory } from '../inventory/index.js';
import { fileOp } from '../render/op.js';
import type { RenderedFile } from '../render/template.js';
import type { Session } from '../session/session.js';
import { base } from './base/index.js';
import { databases } from './databases/index.js';
import { etcd } from './etcd/index.js';
import { haproxy } from './haproxy/index.js';
import { monitoring } from './monitoring/index.js';
import { notifications } from './notifications/index.js';
import { patroni } from './patroni/index.js';
import { pgbackrest } from './pgbackrest/index.js';
import { pgbouncer } from './pgbouncer/index.js';
import { vip } from './vip/index.js';
import type { ApplyContext, CheckResult, Component, Dcs } from './types.js';

export const COMPONENTS: readonly Component[] = [base, etcd, notifications, patroni, vip, haproxy, databases, pgbouncer, pgbackrest, monitoring];

/** Every Debian package a host's roles need, from every component. */
export function packagesFor(inv: Inventory, h: Host): string[] {
  return [...new Set(COMPONENTS.flatMap((c) => c.packages?.(inv, h) ?? []))];
}

/** Every file pgha writes on `hostName`, for its roles only. Needs inv.secrets. */
export function renderHost(inv: Inventory, hostName: string, opts: { dcs: Dcs }): RenderedFile[] {
  if (!inv.secrets) throw new Error('rendering needs the secrets: load the inventory with its secrets file');
  const host = inv.host(hostName);
  return COMPONENTS.flatMap((c) => c.files?.({ inv, host, dcs: opts.dcs }) ?? []);
}

/**
 * The packages stage: the files that must exist before any package is installed (apt settings,
 * Debian's "no default cluster" setting, or postgresql-NN creates and starts its own cluster),
 * then every missing package in one apt call per host, all hosts in parallel.
 */
export async function packagesStage(ctx: Pick<ApplyContext, 'session' | 'rollout' | 'files'>): Promise<void> {
  const { session, rollout } = ctx;
  await rollout.stage('packages', [...session.conns.values()], (conn) => {
    const h = session.inv.host(conn.target.name);
    return [...ctx.files(h).filter((f) => f.beforePackages).map((f) => fileOp(f)), packages(packagesFor(session.inv, h))];
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
  for (const c of COMPONENTS) await c.prepare?.(full);
  for (const c of COMPONENTS) await c.start?.(full);
}

// The components an inventory turns on; their checks run after the others'.
const OPTIONAL = new Set<string>(['notifications', 'vip', 'databases', 'pgbouncer', 'monitoring']);

/**
 * `pgha verify`: every component's checks, at once (verify costs the slowest, not the sum), the
 * optional components' in a second wave: sshd refuses more than 10 sessions on one connection.
 */
export async function verifyCluster(session: Session): Promise<CheckResult[]> {
  const wave = (optional: boolean) => Promise.all(COMPONENTS.filter((c) => OPTIONAL.has(c.name) === optional).flatMap((c) => c.verify?.(session) ?? []));
  const core = await wave(false);
  const optional = await wave(true);
  // In registry order, as before.
  const order = (r: CheckResult) => COMPONENTS.findIndex((c) => c.name === r.component);
  return [...core, ...optional].sort((a, b) => order(a) - order(b));
}

export function formatChecks(results: CheckResult[]): string {
  return results.map((r) => `${r.ok ? 'ok    ' : 'FAILED'} ${r.component}${r.host ? ` (${r.host})` : ''}: ${r.detail}`).join('\n');
}
