// The data disk as PostgreSQL meets it: how full the data directory's filesystem is, and whether
// sessions are waiting on it. Facts for `pgha status` (a command and a pure parser each): a full
// disk keeps PostgreSQL running but refuses every write that needs space, and a slow one stretches
// every commit; neither makes Patroni fail over, so status must say it.
import type { Inventory } from '../../inventory/index.js';
import { RemoteError } from '../../session/remote.js';
import { POSTGRES_HOME } from './paths.js';

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
 * statfs of the data directory pgha makes (paths.ts: POSTGRES_HOME/MAJOR/main; a volume mounted
 * there or above is what is measured), of the inventory's major, else the newest one on the host;
 * POSTGRES_HOME when there is none. As postgres (the major's directory is its own, mode 0700), and
 * without asking PostgreSQL: no psql per call, and an answer when PostgreSQL is down.
 */
export function dataDiskArgv(inv: Inventory): string[] {
  const major = inv.cluster.postgres_version;
  const pick = major
    ? `d=$1/${major}/main; [ -d "$d" ] || d=$1`
    : `d=$1; v=0; for p in "$1"/*/main; do n=\${p#"$1"/}; n=\${n%/main}; case $n in ''|*[!0-9]*) continue ;; esac; [ -d "$p" ] && [ "$n" -gt "$v" ] && { v=$n; d=$p; }; done`;
  return ['sh', '-c', `${pick}; exec stat -f -c "%S %b %a" -- "$d"`, 'pgha-data-disk', POSTGRES_HOME];
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
