// The data disk as PostgreSQL meets it: how full the data directory's filesystem is, and whether
// sessions are waiting on it. Facts for `pgha status` (a command and a pure parser each): a full
// disk keeps PostgreSQL running but refuses every write that needs space, and a slow one stretches
// every commit; neither makes Patroni fail over, so status must say it.
import type { Inventory } from '../../inventory/index.js';
import { NEWEST_PSQL, RemoteError } from '../../session/remote.js';

/** The data directory's filesystem, in bytes. */
export interface DataDisk {
  size_bytes: number;
  free_bytes: number;
}

/** The longest wait of an active session on the disk right now (none: null). */
export interface IoWait {
  wait_event: string;
  seconds: number;
}

/**
 * statfs of the data directory (asked of the running PostgreSQL, so a data directory on a volume
 * of its own is measured), as postgres: the directory is not readable by others. When PostgreSQL
 * does not answer, the parent of every data directory Debian makes.
 */
export function dataDiskArgv(inv: Inventory): string[] {
  return [
    'sh', '-c',
    `${NEWEST_PSQL}; d=$("$psql" -XAtq -p "$1" -U "$2" -d postgres -c "show data_directory" 2>/dev/null) || d=/var/lib/postgresql; exec stat -f -c "%S %b %a" -- "$d"`,
    'pgha-data-disk', String(inv.patroni.postgres_port), inv.patroni.users.superuser,
  ];
}

/** `stat -f -c "%S %b %a"`: block size, blocks, blocks free to unprivileged users. */
export function parseDataDisk(out: string): DataDisk {
  const f = out.trim().split(/\s+/).map(Number);
  if (f.length !== 3 || f.some((n) => !Number.isFinite(n) || n < 0)) throw new RemoteError(`unexpected statfs answer: ${JSON.stringify(out.trim().slice(0, 80))}`);
  return { size_bytes: f[0] * f[1], free_bytes: f[0] * f[2] };
}

/** The I/O waits that mean a session waits on the data disk (WAL and data files). */
const DISK_WAITS = ['WALSync', 'WALWrite', 'WALInitSync', 'WALInitWrite', 'DataFileSync', 'DataFileWrite', 'DataFileExtend', 'DataFileFlush', 'DataFileRead'];

/** For status's local SQL: the active client session that has waited longest on the disk, with how long its statement has run. */
export const IO_WAIT_SQL = `(select json_build_object('wait_event', wait_event, 'seconds', round(extract(epoch from clock_timestamp() - query_start)::numeric, 1))
  from pg_stat_activity where state = 'active' and backend_type = 'client backend' and wait_event_type = 'IO'
  and wait_event in (${DISK_WAITS.map((w) => `'${w}'`).join(', ')}) order by query_start limit 1)`;

/** Below this free, the disk is full: a table or the WAL can no longer grow. */
export const FULL_BYTES = 64 * 2 ** 20;
/** From this share used, the disk is nearly full: worth a look before it is. */
export const NEARLY_FULL = 0.9;
/** A session waiting this long on the disk: the disk is slow. */
export const SLOW_WAIT_S = 1;

const size = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.round(b / 2 ** 20)} MiB`);

/** What is wrong with a member's data disk, in one line; null when nothing is. */
export function diskProblem(member: string, d: DataDisk | null, wait: IoWait | null, isLeader: boolean): { text: string; full: boolean } | null {
  if (d && d.free_bytes < Math.max(FULL_BYTES, d.size_bytes * 0.01)) {
    return {
      text: `${member}: data disk full (${size(d.free_bytes)} free of ${size(d.size_bytes)}): ${isLeader ? 'PostgreSQL refuses every write that needs space' : 'PostgreSQL cannot store the WAL it receives and falls behind'}; free space or grow the disk`,
      full: true,
    };
  }
  if (d && d.size_bytes > 0 && 1 - d.free_bytes / d.size_bytes >= NEARLY_FULL) {
    return { text: `${member}: data disk ${Math.round((1 - d.free_bytes / d.size_bytes) * 100)}% full (${size(d.free_bytes)} free of ${size(d.size_bytes)})`, full: false };
  }
  if (wait && wait.seconds >= SLOW_WAIT_S) {
    return { text: `${member}: data disk slow: a session has waited ${wait.seconds} s on it (${wait.wait_event})`, full: false };
  }
  return null;
}

/** "12% (7.0 GiB free)" for the member table. */
export const diskCell = (d: DataDisk) => `${Math.round((1 - d.free_bytes / Math.max(1, d.size_bytes)) * 100)}% (${size(d.free_bytes)} free)`;
