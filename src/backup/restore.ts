// `pgha restore`: the whole cluster back to a point in time (or to one backup). Everything that
// can be refused is refused before anything is stopped. Then: Patroni stopped on every member,
// the cluster's keys removed from the DCS, ONE member restored and recovered to the target with
// PostgreSQL alone (Patroni would start it as a standby and replay past the target), Patroni
// started on it so it initializes the cluster from that data, a fresh full backup, the other
// members rebuilt from it, and verify.
import { InputError, PghaError } from '../errors.js';
import type { Host } from '../inventory/index.js';
import type { Session } from '../cluster/session.js';
import type { Connection } from '../ssh/index.js';
import { anyPatroniCluster, etcdEndpoints, httpFrom, leaderOf, restapiUrl, sqlLocal } from '../cluster/probes.js';
import { membersStreaming } from '../cluster/health.js';
import { pgbackrestRunner, stanzaInfo } from '../cluster/pgbackrest.js';
import { formatChecks, verifyCluster } from '../cluster/verify.js';
import { dynamicConfigPatch } from '../apply/components/patroni.js';
import { checkTarget, restoreArgs, type CheckedTarget, type RestoreTarget } from './target.js';
import { clusterKey, dcsRemoveCommand, isKeyNotFound, readPatroniSetup, type PatroniSetup } from './dcs.js';
import { followLog, formatBackupResult, takeBackup } from './backup.js';

export interface RestoreOptions {
  target: RestoreTarget;
  yes?: boolean;
  out: (text: string) => void;
  /** Asks the operator; undefined when there is no terminal to ask on. */
  confirm?: (question: string) => Promise<boolean>;
}

const PATRONI_CONFIG = '/etc/patroni/config.yml';
const RECOVERY_LOG = '/var/log/postgresql/pgha-restore-recovery.log';
// What pgBackRest writes into postgresql.auto.conf for the recovery; reset once it is done, so a
// later start as a standby does not stop at the old target again.
const RECOVERY_SETTINGS = [
  'restore_command',
  'recovery_target',
  'recovery_target_name',
  'recovery_target_time',
  'recovery_target_xid',
  'recovery_target_lsn',
  'recovery_target_inclusive',
  'recovery_target_timeline',
  'recovery_target_action',
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<true | string>, intervalMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const r = await probe();
      if (r === true) return;
      last = r;
    } catch (err) {
      last = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
    if (Date.now() > deadline) throw new PghaError(`timed out after ${timeoutMs / 1000}s waiting for ${what}: ${last}`);
    await sleep(intervalMs);
  }
}

/** The WAL timeline PostgreSQL writes now (its current WAL file's first 8 hex digits). */
async function currentTimeline(session: Session, conn: Connection): Promise<number> {
  const r = await sqlLocal(session.inv, conn, 'select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)');
  return parseInt(r.stdout.trim(), 16);
}

async function postgresRunning(conn: Connection, setup: PatroniSetup): Promise<boolean> {
  const r = await conn.run([`${setup.binDir}/pg_ctl`, '-D', setup.dataDir, 'status'], { user: 'postgres', check: false });
  return r.code === 0;
}

/** Patroni stopped and PostgreSQL down on one member (a PostgreSQL left behind is stopped too). */
async function stopMember(conn: Connection, setup: PatroniSetup): Promise<void> {
  await conn.run(['systemctl', 'stop', 'patroni'], { timeoutMs: 300_000 });
  const active = await conn.run(['systemctl', 'is-active', 'patroni'], { check: false });
  if (active.stdout.trim() === 'active') throw new PghaError(`${conn.target.name}: Patroni is still running after systemctl stop`);
  if (await postgresRunning(conn, setup)) {
    await conn.run([`${setup.binDir}/pg_ctl`, '-D', setup.dataDir, '-m', 'fast', '-w', '-t', '300', 'stop'], { user: 'postgres', timeoutMs: 330_000 });
  }
  if (await postgresRunning(conn, setup)) throw new PghaError(`${conn.target.name}: PostgreSQL is still running`);
}

export async function runRestore(session: Session, opts: RestoreOptions): Promise<number> {
  const { inv } = session;
  const { out } = opts;
  const stanza = inv.pgbackrest.stanza;
  const t0 = Date.now();

  // ------------------------------------------------------------ checks (nothing changes)
  const { conn: runner, user: runnerUser } = await pgbackrestRunner(session);
  const info = await stanzaInfo(session);
  const now = Number((await runner.run(['date', '+%s%6N'], { sudo: false })).stdout.trim());
  const checked: CheckedTarget = checkTarget(opts.target, info, now);

  const found = await anyPatroniCluster(inv, (h) => session.conns.get(h.name));
  const oldLeader = found ? leaderOf(found.cluster) : undefined;
  const members = inv.hostsWithRole('postgres');
  // A nofailover member would never take the leader lock.
  const first: Host = (oldLeader && members.find((h) => h.name === oldLeader.name)) || members.find((h) => !h.tags.nofailover) || members[0];
  const firstConn = session.conn(first);
  const others = members.filter((h) => h.name !== first.name);
  const configText = await firstConn.readFile(PATRONI_CONFIG);
  if (configText === null) throw new PghaError(`${first.name}: ${PATRONI_CONFIG} does not exist: run pgha apply first`);
  const setup = readPatroniSetup(configText);
  // The live dynamic configuration (it may differ from bootstrap.dcs): put back after the restore.
  let dynamicConfig: Record<string, unknown> | undefined;
  if (oldLeader) {
    const r = await httpFrom(firstConn, 'GET', restapiUrl(inv, inv.host(oldLeader.name), '/config')).catch(() => undefined);
    if (r?.status === 200) dynamicConfig = JSON.parse(r.body) as Record<string, unknown>;
  }

  const t = checked.target;
  out(
    [
      `RESTORE of cluster ${setup.scope} (stanza ${stanza})`,
      `  target:        ${t.kind === 'time' ? `${t.text} (point in time), starting from backup ${checked.backup.label}` : `backup ${t.label} (its end, no WAL replayed past it)`}`,
      `  current state: ${oldLeader ? `leader ${oldLeader.name}, timeline ${oldLeader.timeline ?? '?'}` : 'no running leader'}`,
      `  restored first: ${first.name}; it becomes the leader`,
      `  then:          ${others.map((h) => h.name).join(', ') || 'no other member'} rebuilt from the repository`,
      `  Patroni is stopped on every member and EVERY member's data is replaced. Writes after the target are lost.`,
    ].join('\n') + '\n',
  );
  if (!opts.yes) {
    if (!opts.confirm) throw new InputError('restore replaces the data of every member: confirm with --yes (there is no terminal to ask on)');
    if (!(await opts.confirm(`Replace every member's data with the state of ${t.kind === 'time' ? t.text : t.label}?`))) {
      out('nothing was changed\n');
      return 1;
    }
  }

  // ------------------------------------------------------------ steps
  const steps: { name: string; ms: number }[] = [];
  let changed = false;
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    out(`==> ${name}\n`);
    const started = Date.now();
    try {
      const r = await fn();
      const ms = Date.now() - started;
      steps.push({ name, ms });
      out(`    done in ${(ms / 1000).toFixed(1)}s\n`);
      return r;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const state = changed
        ? 'The cluster is NOT running normally now. After fixing the cause, run the same pgha restore again: it starts over from the repository.'
        : 'Nothing was changed.';
      throw new PghaError(`restore step "${name}" failed: ${msg}\n${state}`);
    }
  };

  if (t.kind === 'time' && oldLeader) {
    // A commit after the target and its WAL in the archive: recovery needs a record past the
    // target to know it got there. Not fatal: the archive may already hold everything.
    await step('archive the newest WAL (a commit after the target, then pgBackRest check)', async () => {
      const leaderConn = session.conn(oldLeader.name);
      await sqlLocal(inv, leaderConn, 'select txid_current()', { check: false });
      const r = await runner.run(['pgbackrest', `--stanza=${stanza}`, 'check'], { user: runnerUser, check: false, timeoutMs: 180_000 });
      if (r.code !== 0) out(`    warning: pgBackRest check failed; the newest WAL may not be archived: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-1)[0]}\n`);
    });
  }

  changed = true;
  await step(`stop Patroni and PostgreSQL on every member (${[...others, first].map((h) => h.name).join(', ')})`, async () => {
    // Replicas first: a leader stopping first could hand its role to one of them meanwhile.
    await Promise.all(others.map((h) => stopMember(session.conn(h), setup)));
    await stopMember(firstConn, setup);
  });

  await step(`remove the cluster's state from the DCS (${setup.dcs === 'etcd' ? 'etcd v2 store' : 'etcd v3'}, ${clusterKey(setup.namespace, setup.scope)})`, async () => {
    const etcdConn = session.withRole('etcd')[0];
    const r = await etcdConn.run(dcsRemoveCommand(setup, etcdEndpoints(inv)), { sudo: false, check: false, timeoutMs: 30_000 });
    if (r.code !== 0 && !isKeyNotFound(r.stderr)) throw new PghaError(`${etcdConn.target.name}: etcdctl failed: ${r.stderr.trim()}`);
  });

  await step(`restore ${first.name} from backup ${checked.backup.label}${t.kind === 'time' ? ` to ${t.text}` : ''}`, async () => {
    await followLog(firstConn, 'postgres', `/var/log/pgbackrest/${stanza}-restore.log`, (l) => out(`    ${l}\n`), () =>
      firstConn.run(restoreArgs(stanza, checked), { user: 'postgres', timeoutMs: 24 * 3600_000 }),
    );
  });

  const newTimeline = await step(`recover ${first.name} with PostgreSQL alone until the target is reached and it is promoted`, async () => {
    const pgCtl = `${setup.binDir}/pg_ctl`;
    // Sockets only: no client reaches it while it recovers (and the listen address in the
    // restored config may be another member's).
    await firstConn.run([pgCtl, '-D', setup.dataDir, '-l', RECOVERY_LOG, '-W', '-o', "-c listen_addresses=''", 'start'], { user: 'postgres' });
    await waitUntil('the end of recovery (promotion)', 24 * 3600_000, async () => {
      if (!(await postgresRunning(firstConn, setup))) {
        const log = await firstConn.run(['tail', '-n', '15', RECOVERY_LOG], { check: false });
        throw new PghaError(`PostgreSQL stopped during recovery; the end of ${RECOVERY_LOG}:\n${log.stdout.trimEnd()}`);
      }
      const r = await sqlLocal(inv, firstConn, 'select pg_is_in_recovery()', { check: false });
      return r.stdout.trim() === 'f' ? true : r.code === 0 ? 'replaying WAL' : 'starting';
    });
    for (const s of RECOVERY_SETTINGS) await sqlLocal(inv, firstConn, `alter system reset ${s}`);
    const tl = await currentTimeline(session, firstConn);
    await firstConn.run([pgCtl, '-D', setup.dataDir, '-m', 'fast', '-w', '-t', '300', 'stop'], { user: 'postgres', timeoutMs: 330_000 });
    out(`    promoted on timeline ${tl}\n`);
    return tl;
  });

  await step(`start Patroni on ${first.name}; it initializes the cluster from the restored data and leads`, async () => {
    await firstConn.run(['systemctl', 'start', 'patroni']);
    await waitUntil(`${first.name} to lead`, 600_000, async () => {
      const c = await anyPatroniCluster(inv, (h) => (h.name === first.name ? firstConn : undefined));
      const l = c && leaderOf(c.cluster);
      if (!l) return `members: ${c?.cluster.members.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ') || 'none yet'}`;
      if (l.name !== first.name) return `${l.name} leads`;
      const rec = await sqlLocal(inv, firstConn, 'select pg_is_in_recovery()', { check: false });
      return rec.stdout.trim() === 'f' ? true : 'still in recovery';
    });
    if (dynamicConfig) {
      const url = restapiUrl(inv, first, '/config');
      // The new cluster's config key appears a moment after the leader lock.
      let live: Record<string, unknown> = {};
      await waitUntil('Patroni\'s dynamic configuration', 120_000, async () => {
        const r = await httpFrom(firstConn, 'GET', url);
        if (r.status !== 200) return `GET /config answered ${r.status}`;
        live = JSON.parse(r.body) as Record<string, unknown>;
        return true;
      });
      const { patch, changes } = dynamicConfigPatch(live as never, dynamicConfig as never);
      if (changes.length) {
        const r = await httpFrom(firstConn, 'PATCH', url, { body: patch, auth: inv, timeoutSec: 30 });
        if (r.status !== 200) throw new PghaError(`PATCH /config answered ${r.status}`);
        out(`    dynamic configuration put back: ${changes.join(', ')}\n`);
      }
    }
    const tl = await currentTimeline(session, firstConn);
    if (oldLeader?.timeline !== undefined && tl <= oldLeader.timeline) {
      throw new PghaError(`${first.name} runs on timeline ${tl}, not after the old timeline ${oldLeader.timeline}: the restore did not take effect`);
    }
    out(`    ${first.name} leads on timeline ${tl} (before the restore: ${oldLeader?.timeline ?? 'unknown'}; after recovery: ${newTimeline})\n`);
  });

  // A new timeline starts here; a full backup on it is the simple base for later restores
  // and what the other members are rebuilt from.
  await step('full backup of the restored cluster', async () => {
    // The other members are stopped (pgBackRest warns it cannot check them): they are rebuilt from this backup next.
    const r = await takeBackup(session, 'full', (l) => out(`  ${l}\n`), {
      hosts: others.map((h) => h.name),
      why: 'its PostgreSQL stays stopped until it is rebuilt from this backup (the next step)',
    });
    out(`${formatBackupResult(r).replace(/^/gm, '    ')}\n`);
  });

  if (others.length) {
    await step(`rebuild ${others.map((h) => h.name).join(', ')} from the repository and start Patroni`, async () => {
      await Promise.all(
        others.map(async (h) => {
          const c = session.conn(h);
          // Patroni runs create_replica_methods (pgBackRest first) on an empty data directory.
          await c.run(['find', setup.dataDir, '-mindepth', '1', '-delete']);
          await c.run(['systemctl', 'start', 'patroni']);
        }),
      );
      await waitUntil('every member streaming from the leader', 24 * 3600_000, () => membersStreaming(session), 3000);
    });
  }

  // HAProxy marks a new replica up only after a few health checks: give it time to settle.
  const checks = await step('verify', async () => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const c = await verifyCluster(session);
      if (c.every((x) => x.ok) || Date.now() > deadline) return c;
      await sleep(3000);
    }
  });
  out(`VERIFY\n${formatChecks(checks)}\n`);
  out(`restore finished in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  for (const s of steps) out(`  ${(s.ms / 1000).toFixed(1).padStart(7)}s  ${s.name}\n`);
  return checks.some((c) => !c.ok) ? 1 : 0;
}
