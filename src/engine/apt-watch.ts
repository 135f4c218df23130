// A stalled package mirror or proxy, caught: apt-get runs on the host under a small watchdog
// that measures its download progress every half second (the bytes in apt's partial directories,
// where a download grows as data arrives, and apt's output) and ends it after `stallSec` seconds without any, naming the address it
// was waiting on (its open HTTP connection, else the configured apt proxy). Meanwhile pgha reads
// the watchdog's note and says on screen which host waits on what. apt's own
// Acquire::http::Timeout does not end a connection that a proxy accepted and then left silent.
import type { Connection, RunResult } from '../ssh/index.js';

/** The watchdog's exit status when it ended a stalled apt-get (EX_TEMPFAIL). */
export const STALLED_EXIT = 75;

/** Where the watchdog keeps apt's output and its note (one apt run at a time: apt's locks). */
export const WATCH_DIR = '/run/pgha-apt';

// $1 dir, $2 stall limit (s), then the apt-get command line. (Not apt's Status-Fd: it writes
// lines on every pulse, stalled or not.) Every half second: progress = bytes of apt's output and
// partial downloads; idle =
// seconds since they last changed. The note ("IDLE PEER") is what pgha polls. Stalled: TERM (then KILL) apt-get,
// exit STALLED_EXIT with a line saying so. Otherwise apt's output and exit status, as if run directly.
const WATCHDOG = [
  'd=$1; stall=$2; shift 2',
  'rm -rf "$d" && mkdir -p -m 700 "$d" || exit 1',
  '"$@" >"$d/out" 2>"$d/err" &',
  'pid=$!',
  "trap 'kill $pid 2>/dev/null' TERM HUP INT",
  'peer() {',
  '  p=$(ss -Htnp 2>/dev/null | awk \'/"https?"/ { print $5; exit }\')',
  '  [ -n "$p" ] || p=$(apt-config dump Acquire::http::Proxy 2>/dev/null | sed -n \'s/^Acquire::http::Proxy "\\(.*\\)";$/\\1/p\' | head -1)',
  '  echo "${p:-the package mirror}"',
  '}',
  'last=-1; since=$(date +%s); idle=0',
  'while kill -0 "$pid" 2>/dev/null; do',
  '  sleep 0.5',
  '  now=$(du -sb "$d/out" /var/lib/apt/lists/partial /var/cache/apt/archives/partial 2>/dev/null | awk \'{ s += $1 } END { print s + 0 }\')',
  '  t=$(date +%s)',
  '  if [ "$now" != "$last" ]; then last=$now; since=$t; fi',
  '  idle=$((t - since))',
  '  if [ "$idle" -ge 1 ]; then echo "$idle $(peer)" >"$d/note"; else echo "0" >"$d/note"; fi',
  '  if [ "$idle" -ge "$stall" ]; then',
  '    kill "$pid" 2>/dev/null; sleep 2; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null',
  '    cat "$d/out"; cat "$d/err" >&2',
  '    echo "pgha: apt-get stalled: no data for ${idle}s from $(peer)" >&2',
  '    exit 75',
  '  fi',
  'done',
  'wait "$pid"; rc=$?',
  'cat "$d/out"; cat "$d/err" >&2',
  'exit $rc',
].join('\n');

/** The command line that runs `apt` (an apt-get command line) under the watchdog. */
export function watched(apt: readonly string[], stallSec: number): string[] {
  return ['sh', '-c', WATCHDOG, 'sh', WATCH_DIR, String(stallSec), ...apt];
}

/** The watchdog's note: seconds without progress and the address waited on; null when it progresses or has not started. */
export function parseNote(text: string | null): { idleSec: number; peer: string } | null {
  const m = /^(\d+) (.+)$/.exec((text ?? '').trim());
  return m && Number(m[1]) > 0 ? { idleSec: Number(m[1]), peer: m[2] } : null;
}

/** The address a stalled run waited on, from the watchdog's last line; null when the run did not stall. */
export function stalledOn(r: RunResult): string | null {
  if (r.code !== STALLED_EXIT) return null;
  return /pgha: apt-get stalled: no data for \d+s from (.+)$/m.exec(r.stderr)?.[1].trim() ?? 'the package mirror';
}

/**
 * Runs `run` (the watched apt command) and, while it runs, reads the watchdog's note every
 * `pollMs`: a host waiting `reportAfterSec` or more on its mirror or proxy is reported through
 * `progress` ("apt-get update waiting 10s on 10.0.0.1:3142 (no data)"), again as the wait grows.
 */
export async function withStallReports<T>(conn: Connection, what: string, run: Promise<T>, progress: (text: string) => void, opts: { pollMs?: number; reportAfterSec?: number } = {}): Promise<T> {
  let done = false;
  let wake = () => {};
  const poll = (async () => {
    let reported = 0;
    while (!done) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, opts.pollMs ?? 5000);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      if (done) break;
      const r = await conn.run(['cat', `${WATCH_DIR}/note`], { check: false, timeoutMs: 10_000, display: `${what}: the download watchdog's note` }).catch(() => null);
      const note = parseNote(r && r.code === 0 ? r.stdout : null);
      if (!done && note && note.idleSec >= (opts.reportAfterSec ?? 10) && note.idleSec > reported) {
        reported = note.idleSec;
        progress(`${what} waiting ${note.idleSec}s on ${note.peer} (no data)`);
      }
    }
  })();
  try {
    return await run;
  } finally {
    done = true;
    wake();
    await poll;
  }
}
