// `pgha restore`: the whole cluster back to a point in time (or to one backup). Everything that
// can be refused is refused before anything is stopped. Then: Patroni stopped on every member,
// the cluster's keys removed from the DCS, ONE member restored and recovered to the target with
// PostgreSQL alone (Patroni would start it as a standby and replay past the target), Patroni
// started on it so it initializes the cluster from that data, a fresh full backup, the other
// members rebuilt from it, and verify.
import { PghaError } from '../../errors.js';
import { GiveUp, Steps, stepFailure, waitFor } from '../../engine/index.js';
import type { Host } from '../../inventory/index.js';
import type { Session } from '../../session/session.js';
import { sqlLocal } from '../../session/remote.js';
import { formatChecks, verifyCluster } from '../../components/index.js';
import type { CheckResult } from '../../components/types.js';
import { currentLeader, membersStreaming } from '../../components/patroni/cluster.js';
import { dynamicConfigPatch, liveDynamicConfig, memberSetup, patchDynamicConfig, type Json } from '../../components/patroni/config.js';
import {
  clusterKey,
  currentTimeline,
  emptyDataDir,
  postgresRunning,
  removeClusterFromDcs,
  startPatroni,
  startPostgresAlone,
  stopMember,
  stopPostgres,
} from '../../components/patroni/actions.js';
import { pgbackrest, pgbackrestRunner, stanzaInfo, runRestore as pgbackrestRestore, lastLines } from '../../components/pgbackrest/runner.js';
import { checkTarget, restoreArgs, type RestoreTarget } from '../../components/pgbackrest/target.js';
import { formatBackupResult } from './format.js';
import { takeBackup } from './backup.js';

export interface RestoreOptions {
  target: RestoreTarget;
  out: (text: string) => void;
  /** Asks the operator (throws when not confirmed, or without a terminal and without --yes). */
  confirm: (question: string) => Promise<void>;
}

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

export async function restoreCluster(session: Session, opts: RestoreOptions): Promise<number> {
  const { inv } = session;
  const { out } = opts;
  const stanza = inv.pgbackrest.stanza;

  // ------------------------------------------------------------ checks (nothing changes)
  const runner = await pgbackrestRunner(session);
  const info = await stanzaInfo(session, runner);
  const now = Number((await runner.conn.run(['date', '+%s%6N'], { sudo: false })).stdout.trim());
  const checked = checkTarget(opts.target, info, now);

  const oldLeader = await currentLeader(session);
  const members = inv.hostsWithRole('postgres');
  // A nofailover member would never take the leader lock.
  const first: Host = (oldLeader && members.find((h) => h.name === oldLeader.name)) || members.find((h) => !h.tags.nofailover) || members[0];
  const firstConn = session.conn(first);
  const others = members.filter((h) => h.name !== first.name);
  const setup = await memberSetup(firstConn);
  // The live dynamic configuration (it may differ from bootstrap.dcs): put back after the restore.
  const dynamicConfig = oldLeader ? await liveDynamicConfig(inv, firstConn, inv.host(oldLeader.name)).catch(() => undefined) : undefined;

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
  await opts.confirm(`Replace every member's data with the state of ${t.kind === 'time' ? t.text : t.label}?`);

  // ------------------------------------------------------------ steps
  let changed = false;
  const steps = new Steps(out, (name, err) =>
    stepFailure(
      `restore step "${name}"`,
      err,
      changed
        ? 'The cluster is NOT running normally now. After fixing the cause, run the same pgha restore again: it starts over from the repository.'
        : 'Nothing was changed.',
    ),
  );

  if (t.kind === 'time' && oldLeader) {
    // A commit after the target and its WAL in the archive: recovery needs a record past the
    // target to know it got there. Not fatal: the archive may already hold everything.
    await steps.step('archive the newest WAL (a commit after the target, then pgBackRest check)', async () => {
      await sqlLocal(inv, session.conn(oldLeader.name), 'select txid_current()', { check: false });
      const r = await pgbackrest(session, runner, ['check'], { check: false, timeoutMs: 180_000 });
      if (r.code !== 0) out(`    warning: pgBackRest check failed; the newest WAL may not be archived: ${lastLines(r)}\n`);
    });
  }

  changed = true;
  await steps.step(`stop Patroni and PostgreSQL on every member (${[...others, first].map((h) => h.name).join(', ')})`, async () => {
    // Replicas first: a leader stopping first could hand its role to one of them meanwhile.
    await Promise.all(others.map((h) => stopMember(session.conn(h), setup)));
    await stopMember(firstConn, setup);
  });

  await steps.step(`remove the cluster's state from the DCS (${setup.dcs === 'etcd' ? 'etcd v2 store' : 'etcd v3'}, ${clusterKey(setup.namespace, setup.scope)})`, () =>
    removeClusterFromDcs(inv, session.withRole('etcd')[0], setup),
  );

  await steps.step(`restore ${first.name} from backup ${checked.backup.label}${t.kind === 'time' ? ` to ${t.text}` : ''}`, () =>
    pgbackrestRestore(session, firstConn, restoreArgs(stanza, checked), (l) => out(`    ${l}\n`)),
  );

  const newTimeline = await steps.step(`recover ${first.name} with PostgreSQL alone until the target is reached and it is promoted`, async () => {
    // Sockets only: no client reaches it while it recovers (and the listen address in the
    // restored config may be another member's).
    await startPostgresAlone(firstConn, setup, RECOVERY_LOG, "-c listen_addresses=''");
    // pg_ctl start -W returns before the postmaster has written its pid file, so "no server
    // running" right after it is a start still under way (seen on a loaded host), not a stop:
    // it is a stop once PostgreSQL was seen running, or when it never appears within 15 s.
    const startedAt = Date.now();
    let seenRunning = false;
    await waitFor(
      'the end of recovery (promotion)',
      async () => {
        const running = await postgresRunning(firstConn, setup);
        if (running) seenRunning = true;
        else if (!seenRunning && Date.now() - startedAt < 15_000) return 'starting';
        if (!running) {
          const log = await firstConn.run(['tail', '-n', '15', RECOVERY_LOG], { check: false });
          throw new GiveUp(`PostgreSQL stopped during recovery; the end of ${RECOVERY_LOG}:\n${log.stdout.trimEnd()}`);
        }
        const r = await sqlLocal(inv, firstConn, 'select pg_is_in_recovery()', { check: false });
        return r.stdout.trim() === 'f' ? true : r.code === 0 ? 'replaying WAL' : 'starting';
      },
      { timeoutMs: 24 * 3600_000, intervalMs: 2000 },
    );
    for (const s of RECOVERY_SETTINGS) await sqlLocal(inv, firstConn, `alter system reset ${s}`);
    const tl = await currentTimeline(inv, firstConn);
    await stopPostgres(firstConn, setup);
    out(`    promoted on timeline ${tl}\n`);
    return tl;
  });

  await steps.step(`start Patroni on ${first.name}; it initializes the cluster from the restored data and leads`, async () => {
    await startPatroni(firstConn);
    await waitFor(
      `${first.name} to lead`,
      async () => {
        const l = await currentLeader(session);
        if (!l) return 'no running leader yet';
        if (l.name !== first.name) return `${l.name} leads`;
        const rec = await sqlLocal(inv, firstConn, 'select pg_is_in_recovery()', { check: false });
        return rec.stdout.trim() === 'f' ? true : 'still in recovery';
      },
      { timeoutMs: 600_000, intervalMs: 2000 },
    );
    if (dynamicConfig) {
      // The new cluster's config key appears a moment after the leader lock.
      let live: Record<string, Json> = {};
      await waitFor(
        "Patroni's dynamic configuration",
        async () => {
          live = await liveDynamicConfig(inv, firstConn, first);
          return true;
        },
        { timeoutMs: 120_000, intervalMs: 2000 },
      );
      const { patch, changes } = dynamicConfigPatch(live, dynamicConfig);
      if (changes.length) {
        await patchDynamicConfig(inv, firstConn, first, patch);
        out(`    dynamic configuration put back: ${changes.join(', ')}\n`);
      }
    }
    const tl = await currentTimeline(inv, firstConn);
    if (oldLeader?.timeline !== undefined && tl <= oldLeader.timeline) {
      throw new PghaError(`${first.name} runs on timeline ${tl}, not after the old timeline ${oldLeader.timeline}: the restore did not take effect`);
    }
    out(`    ${first.name} leads on timeline ${tl} (before the restore: ${oldLeader?.timeline ?? 'unknown'}; after recovery: ${newTimeline})\n`);
  });

  // A new timeline starts here; a full backup on it is the simple base for later restores
  // and what the other members are rebuilt from.
  await steps.step('full backup of the restored cluster', async () => {
    // The other members are stopped (pgBackRest warns it cannot check them): they are rebuilt from this backup next.
    const r = await takeBackup(session, 'full', (l) => out(`  ${l}\n`), {
      hosts: others.map((h) => h.name),
      why: 'its PostgreSQL stays stopped until it is rebuilt from this backup (the next step)',
    });
    out(`${formatBackupResult(r).replace(/^/gm, '    ')}\n`);
  });

  if (others.length) {
    await steps.step(`rebuild ${others.map((h) => h.name).join(', ')} from the repository and start Patroni`, async () => {
      await Promise.all(
        others.map(async (h) => {
          const c = session.conn(h);
          // Patroni runs create_replica_methods (pgBackRest first) on an empty data directory.
          await emptyDataDir(c, setup);
          await startPatroni(c);
        }),
      );
      await waitFor('every member streaming from the leader', () => membersStreaming(session), { timeoutMs: 24 * 3600_000, intervalMs: 3000 });
    });
  }

  // HAProxy marks a new replica up only after a few health checks: give it time to settle.
  const checks = await steps.step('verify', async () => {
    let last: CheckResult[] = [];
    const passing = async () => {
      last = await verifyCluster(session);
      const failing = last.filter((c) => !c.ok).map((c) => c.component);
      return failing.length ? `failing: ${failing.join(', ')}` : true;
    };
    // Timing out here is not the step failing: the checks are printed below, and the exit code says it.
    await waitFor('every verify check to pass', passing, { timeoutMs: 120_000, intervalMs: 3000 }).catch((err) => {
      if (!(err instanceof PghaError)) throw err;
    });
    return last;
  });
  out(`VERIFY\n${formatChecks(checks)}\n`);
  out(`restore finished in ${(steps.elapsedMs() / 1000).toFixed(1)}s\n`);
  out(steps.summary());
  return checks.some((c) => !c.ok) ? 1 : 0;
}
