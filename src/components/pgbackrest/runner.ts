// pgBackRest's runbook actions: where its commands run (the repository host as pgbackrest, or
// the leader as postgres with a shared repository), and the commands themselves: info, check,
// backup (with its progress read from its log), restore's arguments.
import { PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import type { Connection, RunResult } from '../../ssh/index.js';
import type { Session } from '../../session/session.js';
import { currentLeader } from '../patroni/cluster.js';
import { parseInfo, type StanzaInfo } from './info.js';
import { logFile, REPO_USER } from './paths.js';

export interface Runner {
  conn: Connection;
  user: string;
}

/** Where pgBackRest commands run: the repository host (as pgbackrest), or the leader (shared path). */
export async function pgbackrestRunner(session: Session): Promise<Runner> {
  const { inv } = session;
  if (inv.repositoryHost) return { conn: session.conn(inv.repositoryHost), user: REPO_USER };
  const leader = await currentLeader(session);
  if (!leader) throw new PghaError('no Patroni leader to run pgBackRest on (the repository is a shared path, so pgBackRest runs on the leader)');
  return { conn: session.conn(leader.name), user: 'postgres' };
}

/** The argv of `pgbackrest --stanza=S ARGS...`. */
export const pgbackrestArgv = (inv: Inventory, args: string[]) => ['pgbackrest', `--stanza=${inv.pgbackrest.stanza}`, ...args];
/** `info` as JSON (read with parseInfo). */
export const INFO_ARGS = ['--output=json', 'info'];

/** `pgbackrest --stanza=S ARGS...` where the runner says, as its user. */
export function pgbackrest(session: Session, runner: Runner, args: string[], opts: { timeoutMs?: number; check?: boolean } = {}): Promise<RunResult> {
  return runner.conn.run(pgbackrestArgv(session.inv, args), { user: runner.user, check: opts.check, timeoutMs: opts.timeoutMs });
}

/** The last lines of a failed pgBackRest command, for a message. */
export function lastLines(r: RunResult, n = 1): string {
  return (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-n).join(' ');
}

export async function stanzaInfo(session: Session, runner?: Runner): Promise<StanzaInfo> {
  const r = await pgbackrest(session, runner ?? (await pgbackrestRunner(session)), INFO_ARGS, { timeoutMs: 60_000 });
  return parseInfo(r.stdout, session.inv.pgbackrest.stanza);
}

/** The options of one database host in the repository host's pgbackrest.conf (templates/pgbackrest/repo.conf.hbs writes pgN-these). */
export const PG_HOST_OPTIONS = ['host', 'host-user', 'path', 'port', 'socket-path', 'user'] as const;

/**
 * On the repository host: the leader as pgBackRest's only database host (pg1; every other pgN reset
 * to nothing). pgBackRest opens its pgN hosts one after another, each an SSH session and queries at
 * about 0.1 s each (its wait loop), so three cost 2.5-4 s; the archive check needs the leader only.
 */
export function leaderOnlyArgs(inv: Inventory, leader: string): string[] {
  const pg = inv.hostsWithRole('postgres');
  const host = pg.find((h) => h.name === leader);
  if (!host) throw new PghaError(`the leader ${leader} is not a postgres host of the inventory`);
  return [`--pg1-host=${host.address}`, ...pg.slice(1).flatMap((_, i) => PG_HOST_OPTIONS.map((o) => `--reset-pg${i + 2}-${o}`))];
}

/**
 * The link pgBackRest takes from the repository host to a database host (SSH as postgres, with
 * the repository user's key and known_hosts; pgBackRest installed there), without its queries.
 */
export const remoteLinkArgv = (address: string) => ['ssh', '-o', 'BatchMode=yes', '-o', 'LogLevel=error', '-o', 'ConnectTimeout=10', `postgres@${address}`, 'pgbackrest', 'version'];

/**
 * `pgbackrest check`: WAL archiving works (a WAL switch archived to the repository). true or the reason.
 * With a repository host and a leader: pgBackRest checks the leader alone while the repository
 * host's link to every other member is tried at the same time (a backup after a failover takes it).
 */
export async function stanzaCheck(session: Session, runner?: Runner): Promise<true | string> {
  runner ??= await pgbackrestRunner(session);
  const { inv } = session;
  const pg = inv.hostsWithRole('postgres');
  const leader = inv.repositoryHost?.name === runner.conn.target.name ? await currentLeader(session) : undefined;
  if (!leader || !pg.some((h) => h.name === leader.name)) {
    const r = await pgbackrest(session, runner, ['check'], { check: false, timeoutMs: 120_000 });
    return r.code === 0 ? true : lastLines(r, 2);
  }
  const others = pg.filter((h) => h.name !== leader.name);
  const [r, ...links] = await Promise.all([
    pgbackrest(session, runner, [...leaderOnlyArgs(inv, leader.name), 'check'], { check: false, timeoutMs: 120_000 }),
    ...others.map((h) => runner.conn.run(remoteLinkArgv(h.address), { user: runner.user, check: false, timeoutMs: 30_000 })),
  ]);
  if (r.code !== 0) return lastLines(r, 2);
  const broken = others.flatMap((h, i) => (links[i].code === 0 ? [] : [`${runner.conn.target.name} cannot reach ${h.name} as pgBackRest does (ssh postgres@${h.address}): ${lastLines(links[i]) || `exit ${links[i].code}`}`]));
  return broken.length ? broken.join('; ') : true;
}

/**
 * Prints the new INFO/WARN/ERROR lines of a pgBackRest log file while `work` runs (the log is
 * on the host; pgBackRest's console output only arrives when the command ends).
 */
async function followLog<T>(conn: Connection, user: string, path: string, onLine: (l: string) => void, work: () => Promise<T>): Promise<T> {
  const count = await conn.run(['sh', '-c', 'if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi', 'sh', path], { user, check: false });
  let seen = Number(count.stdout.trim()) || 0;
  let done = false;
  const poll = async () => {
    const r = await conn.run(['tail', '-n', `+${seen + 1}`, path], { user, check: false, timeoutMs: 20_000 });
    if (r.code !== 0) return;
    const complete = r.stdout.slice(0, r.stdout.lastIndexOf('\n') + 1);
    const lines = complete.split('\n').slice(0, -1);
    seen += lines.length;
    for (const l of lines) {
      const m = /^\S+ \S+ P\d+ +(INFO|WARN|ERROR): (.*)$/.exec(l);
      if (m && !/^(backup|restore) command (begin|end)/.test(m[2])) onLine(`${m[1] === 'INFO' ? '' : `${m[1]}: `}${m[2]}`);
    }
  };
  const loop = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 2000));
      if (!done) await poll().catch(() => {});
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await loop;
    await poll().catch(() => {});
  }
}

const BACKUP_TYPES = ['full', 'diff', 'incr'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

/** One backup where the scheduled ones run, its progress shown from pgBackRest's log. */
export async function runBackup(session: Session, runner: Runner, type: BackupType, onLine: (l: string) => void): Promise<RunResult> {
  return followLog(runner.conn, runner.user, logFile(session.inv, 'backup'), onLine, () =>
    pgbackrest(session, runner, [`--type=${type}`, '--log-level-console=info', 'backup'], { check: false, timeoutMs: 24 * 3600_000 }),
  );
}

/** `pgbackrest restore` (restoreArgs) on a database host, as postgres, its progress shown from its log. */
export async function runRestore(session: Session, conn: Connection, argv: string[], onLine: (l: string) => void): Promise<void> {
  await followLog(conn, 'postgres', logFile(session.inv, 'restore'), onLine, () => conn.run(argv, { user: 'postgres', timeoutMs: 24 * 3600_000 }));
}
