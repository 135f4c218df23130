// Patroni's runbook actions: the few things pgha does to a member or to the cluster through
// Patroni (REST API requests, systemctl, pg_ctl). Switchover, failover, restore and the day-2
// procedures are compositions of these.
import { PghaError } from '../../errors.js';
import type { Host, Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import { httpFrom, sqlLocal, type HttpResult } from '../../session/remote.js';
import { etcdctlAs, etcdctlTlsFlags, etcdEndpoints } from '../etcd/endpoints.js';
import { patchDynamicConfig, type PatroniSetup } from './config.js';
import { restapiUrl } from './paths.js';

// ---------------------------------------------------------------- REST API

/** Patroni answers 200 on /primary only on the running primary that holds the leader lock. */
export async function isPrimary(inv: Inventory, from: Connection, h: Host): Promise<boolean> {
  return httpFrom(from, 'GET', restapiUrl(inv, h, '/primary')).then((r) => r.status === 200);
}

/** POST /switchover (or scheduled with `at`), with the REST API credentials over stdin. */
export function requestSwitchover(inv: Inventory, from: Connection, leader: Host, body: { leader: string; candidate?: string; scheduled_at?: string }): Promise<HttpResult> {
  return httpFrom(from, 'POST', restapiUrl(inv, leader, '/switchover'), { body, auth: inv, timeoutSec: 60 });
}

/** POST /failover to the candidate's own Patroni. */
export function requestFailover(inv: Inventory, from: Connection, candidate: Host): Promise<HttpResult> {
  return httpFrom(from, 'POST', restapiUrl(inv, candidate, '/failover'), { body: { candidate: candidate.name }, auth: inv, timeoutSec: 60 });
}

/**
 * 503 "status unknown": Patroni stopped waiting for the result (a loaded machine, a dead leader's
 * lock that runs out later), not a refusal; whether the leader changed is for the caller to find out.
 */
export const isAcceptedOrUnknown = (r: HttpResult) => r.status === 200 || (r.status === 503 && /unknown/i.test(r.body));

/** A Patroni answer other than success, as an error that quotes it. */
export function refused(action: string, r: HttpResult): PghaError {
  const text = r.body.trim() || '(no body)';
  if (r.status === 412) return new PghaError(`Patroni refused the ${action} (412): ${text}. Nothing was changed.`);
  if (r.status === 401 || r.status === 403) return new PghaError(`Patroni refused the REST API credentials (${r.status}): check restapi_password in the secrets file`);
  return new PghaError(`Patroni answered ${r.status} to the ${action}: ${text}`);
}

/**
 * POST /restart of one member: Patroni stops and starts its PostgreSQL (a replica in synchronous
 * mode first hands the synchronous role to another member) and answers when it is done, or after
 * `timeoutSec`. `pendingOnly`: only if a restart is pending (Patroni answers 503 otherwise).
 */
export function requestRestart(inv: Inventory, from: Connection, member: Host, opts: { timeoutSec: number; pendingOnly?: boolean }): Promise<HttpResult> {
  const body = { timeout: opts.timeoutSec, ...(opts.pendingOnly ? { restart_pending: true } : {}) };
  return httpFrom(from, 'POST', restapiUrl(inv, member, '/restart'), { body, auth: inv, timeoutSec: opts.timeoutSec + 30 });
}

/**
 * Maintenance mode on or off (PATCH /config {pause}, as `patronictl pause` does): while paused,
 * Patroni neither fails over nor stops PostgreSQL when it stops itself, so Patroni can be
 * restarted (upgraded) under a running PostgreSQL.
 */
export async function setPaused(inv: Inventory, from: Connection, h: Host, paused: boolean): Promise<void> {
  await patchDynamicConfig(inv, from, h, { pause: paused ? true : null });
}

// ---------------------------------------------------------------- a member's services

export async function startPatroni(conn: Connection): Promise<void> {
  await conn.run(['systemctl', 'start', 'patroni']);
}

export async function postgresRunning(conn: Connection, setup: PatroniSetup): Promise<boolean> {
  return (await conn.run([`${setup.binDir}/pg_ctl`, '-D', setup.dataDir, 'status'], { user: 'postgres', check: false })).code === 0;
}

/** PostgreSQL started alone, without Patroni (a restore's recovery), with extra server options. */
export async function startPostgresAlone(conn: Connection, setup: PatroniSetup, log: string, options: string): Promise<void> {
  await conn.run([`${setup.binDir}/pg_ctl`, '-D', setup.dataDir, '-l', log, '-W', '-o', options, 'start'], { user: 'postgres' });
}

/** PostgreSQL stopped cleanly (fast mode: open sessions are ended, everything is checkpointed). */
export async function stopPostgres(conn: Connection, setup: PatroniSetup): Promise<void> {
  await conn.run([`${setup.binDir}/pg_ctl`, '-D', setup.dataDir, '-m', 'fast', '-w', '-t', '300', 'stop'], { user: 'postgres', timeoutMs: 330_000 });
}

/** Patroni stopped and PostgreSQL down on one member (a PostgreSQL left behind is stopped too). */
export async function stopMember(conn: Connection, setup: PatroniSetup): Promise<void> {
  await conn.run(['systemctl', 'stop', 'patroni'], { timeoutMs: 300_000 });
  const active = await conn.run(['systemctl', 'is-active', 'patroni'], { check: false });
  if (active.stdout.trim() === 'active') throw new PghaError(`${conn.target.name}: Patroni is still running after systemctl stop`);
  if (await postgresRunning(conn, setup)) await stopPostgres(conn, setup);
  if (await postgresRunning(conn, setup)) throw new PghaError(`${conn.target.name}: PostgreSQL is still running`);
}

/** A member's data directory emptied: Patroni then rebuilds it (create_replica_methods) when it starts. */
export async function emptyDataDir(conn: Connection, setup: PatroniSetup): Promise<void> {
  await conn.run(['find', setup.dataDir, '-mindepth', '1', '-delete']);
}

/** The WAL timeline PostgreSQL writes now (its current WAL file's first 8 hex digits). */
export async function currentTimeline(inv: Inventory, conn: Connection): Promise<number> {
  const r = await sqlLocal(inv, conn, 'select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)');
  return parseInt(r.stdout.trim(), 16);
}

// ---------------------------------------------------------------- the cluster's keys in the DCS

/** Patroni's key prefix for one cluster: NAMESPACE/SCOPE (no trailing slash). */
export function clusterKey(namespace: string, scope: string): string {
  return `/${namespace.replace(/^\/+|\/+$/g, '')}/${scope}`.replace(/^\/\//, '/');
}

/**
 * etcdctl removing every key of the cluster: the v2 store for Patroni's `etcd:` DCS, the v3
 * keyspace for `etcd3:` (with a trailing slash, so a cluster whose name merely starts the same stays).
 * With `member`, only that member's key (SCOPE/members/NAME).
 */
export function dcsRemoveCommand(
  setup: Pick<PatroniSetup, 'dcs' | 'namespace' | 'scope'>,
  endpoints: string[],
  tlsFlags: { v2: string[]; v3: string[] } = { v2: [], v3: [] },
  member?: string,
): string[] {
  const key = clusterKey(setup.namespace, setup.scope);
  const ep = `--endpoints=${endpoints.join(',')}`;
  const one = member === undefined ? undefined : `${key}/members/${member}`;
  return setup.dcs === 'etcd'
    ? ['env', 'ETCDCTL_API=2', 'etcdctl', ep, ...tlsFlags.v2, 'rm', ...(one ? [one] : ['--recursive', key])]
    : ['env', 'ETCDCTL_API=3', 'etcdctl', ep, ...tlsFlags.v3, 'del', ...(one ? [one] : ['--prefix', `${key}/`])];
}

/** etcdctl's answer when there was nothing to remove (v2 "Key not found"; v3 deletes 0 keys and exits 0). */
export const isKeyNotFound = (stderr: string) => /Key not found/i.test(stderr);

/** Removes the cluster's keys from the DCS (asked on an etcd host); nothing there is fine. */
export async function removeClusterFromDcs(inv: Inventory, etcdConn: Connection, setup: PatroniSetup): Promise<void> {
  const failed = await dcsRemove(inv, etcdConn, setup);
  if (failed) throw new PghaError(failed);
}

/**
 * Removes a member's key from the DCS (asked on an etcd host), for a member whose Patroni is
 * stopped: Patroni leaves it behind when it stops, and it would only expire after ttl. Nothing
 * there is fine; null when done, else what etcdctl said.
 */
export function removeMemberFromDcs(inv: Inventory, etcdConn: Connection, dcs: PatroniSetup['dcs'], member: string): Promise<string | null> {
  return dcsRemove(inv, etcdConn, { dcs, namespace: inv.patroni.namespace, scope: inv.cluster.name }, member);
}

/** dcsRemoveCommand run on an etcd host: null when done (or nothing was there), else what etcdctl said. */
async function dcsRemove(inv: Inventory, etcdConn: Connection, setup: Pick<PatroniSetup, 'dcs' | 'namespace' | 'scope'>, member?: string): Promise<string | null> {
  const tls = { v2: etcdctlTlsFlags(inv, { v2: true }), v3: etcdctlTlsFlags(inv) };
  const r = await etcdConn.run(dcsRemoveCommand(setup, etcdEndpoints(inv), tls, member), { ...etcdctlAs(inv), check: false, timeoutMs: 30_000 });
  return r.code === 0 || isKeyNotFound(r.stderr) ? null : `${etcdConn.target.name}: etcdctl failed: ${r.stderr.trim() || `exit ${r.code}`}`;
}

/**
 * `systemctl reload patroni` (SIGHUP): Patroni re-reads its config, loads a changed REST API
 * certificate and reloads PostgreSQL (which loads its certificate anew). Nothing restarts. Then
 * waits until its REST API answers again (verified against the CA the host trusts).
 */
export async function reloadMember(inv: Inventory, conn: Connection, h: Host): Promise<void> {
  const active = await conn.run(['systemctl', 'is-active', '--quiet', 'patroni'], { check: false });
  if (active.code !== 0) return;
  await conn.run(['systemctl', 'reload', 'patroni']);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await httpFrom(conn, 'GET', restapiUrl(inv, h, '/patroni')).then(
      (r) => r.status === 200 || r.status === 503,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new PghaError(`${h.name}: Patroni's REST API does not answer after the reload`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
