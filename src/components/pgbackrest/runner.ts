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

/** `pgbackrest check`: WAL archiving works (a WAL switch archived to the repository). true or the reason. */
export async function stanzaCheck(session: Session, runner?: Runner): Promise<true | string> {
  const r = await pgbackrest(session, runner ?? (await pgbackrestRunner(session)), ['check'], { check: false, timeoutMs: 120_000 });
  return r.code === 0 ? true : lastLines(r, 2);
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
