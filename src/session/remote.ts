// Asking a host: every question is asked FROM a host over SSH (the operator may reach the hosts
// only by SSH): HTTP with curl (Patroni's REST API, HAProxy's stats), SQL with psql, each with a
// deadline. Secrets (the REST API and superuser passwords) travel over stdin, never on a command line.
import { randomBytes } from 'node:crypto';
import { ipVersion } from '../inventory/schema.js';
import type { Inventory } from '../inventory/index.js';
import type { Connection, EachCommand } from '../ssh/index.js';
import { shellQuote } from '../ssh/quote.js';
import { PghaError } from '../errors.js';
import { CA_BUNDLE } from '../components/tls/paths.js';

/** An address where a host:port or URL needs it: IPv6 in brackets. */
export function bracketed(addr: string): string {
  return ipVersion(addr) === 6 ? `[${addr}]` : addr;
}

/** host:port, with brackets around an IPv6 address (URLs, Patroni and HAProxy addresses). */
export function hostPort(addr: string, port: number): string {
  return `${bracketed(addr)}:${port}`;
}

/**
 * One parameter of a curl config file, double-quoted with the escapes curl documents for it
 * (`-K, --config`): a quote, backslash or line break in a value can then neither end it nor
 * start another option (an extra `url` or `output` line).
 */
export function curlConfigValue(value: string): string {
  if (value.includes('\0')) throw new PghaError('a NUL character cannot be passed to curl');
  const esc: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\v': '\\v' };
  return `"${value.replace(/[\\"\t\n\r\v]/g, (c) => esc[c])}"`;
}

/** curl's config-file syntax, so the REST API password travels over stdin, never on a command line. */
export function curlAuthConfig(inv: Inventory): string {
  return `user = ${curlConfigValue(`${inv.patroni.users.restapi}:${inv.secrets?.restapi_password ?? ''}`)}\n`;
}

export interface HttpResult {
  status: number;
  body: string;
}

/** A question that could not be asked (curl failed, no answer in time): the caller decides what it means. */
export class RemoteError extends PghaError {}

/** An HTTP request made by curl on `from`. Never throws for an HTTP status; throws a RemoteError when curl fails. */
export async function httpFrom(
  from: Connection,
  method: string,
  url: string,
  opts: { body?: unknown; auth?: Inventory; timeoutSec?: number } = {},
): Promise<HttpResult> {
  const args = ['curl', '-sS', '--max-time', String(opts.timeoutSec ?? 3), '-X', method, '-w', '\\n%{http_code}'];
  // The cluster's HTTPS endpoints present certificates of the cluster CA, which every host trusts.
  if (url.startsWith('https://')) args.push('--cacert', CA_BUNDLE);
  let stdin: string | undefined;
  if (opts.auth) {
    args.push('-K', '-');
    stdin = curlAuthConfig(opts.auth);
  }
  if (opts.body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(opts.body));
  args.push(url);
  const r = await from.run(args, { sudo: false, stdin, check: false, timeoutMs: ((opts.timeoutSec ?? 3) + 10) * 1000 });
  if (r.code !== 0) throw new RemoteError(`${method} ${url} from ${from.target.name}: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

/**
 * httpEachCommand's script: curl fetches every URL at once (-Z), each body into a file of its own
 * (parallel transfers would interleave on one stream), in a directory on tmpfs where there is one
 * (a full disk must not keep status from asking). Then curl's line per URL, then each body after
 * a marker line ($1: a marker no answer can know in advance), then an end marker.
 */
const EACH_SCRIPT = `m=$1; shift
d=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
cd "$d" || exit 1
curl "$@" > w
# The markers go into files of their own, so one cat prints everything (a process costs a host more than the bytes).
set -- w
for f in [0-9]*; do [ -f "$f" ] && { printf '\\n@@%s %s@@\\n' "$m" "$f" > "m$f"; set -- "$@" "m$f" "$f"; }; done
printf '\\n@@%s end@@\\n' "$m" > end
cat "$@" end`;

/** The command asking several URLs at once, with what reads its answer. */
export interface HttpEachCommand extends EachCommand {
  cmd: string[];
  /** Each URL's answer, or a RemoteError for a URL curl could not fetch, in the order asked. */
  read(host: string, r: { code: number; stdout: string; stderr: string }): (HttpResult | RemoteError)[];
}

/**
 * GET of several URLs by ONE curl, all at once (a host's questions cost one process, not one
 * each; Patroni's REST API over TLS answers each request ~40 ms late, its reply waiting for curl's
 * delayed ACK, so one after another they add up). Runs as any user (status: a part of a host's
 * runEach batch).
 */
export function httpEachCommand(urls: string[], opts: { timeoutSec?: number } = {}): HttpEachCommand {
  const timeoutSec = opts.timeoutSec ?? 3;
  // Not starting with @: curl reads a -w format that does from a file.
  const mark = `pgha-${randomBytes(6).toString('hex')}`;
  const args = ['-sS', '--no-progress-meter', '-Z', '--parallel-immediate', '--max-time', String(timeoutSec), '-w', `${mark}-http %{urlnum} %{http_code} %{exitcode} %{errormsg}\\n`];
  // As httpFrom: the cluster's HTTPS endpoints present certificates of the cluster CA.
  if (urls.some((u) => u.startsWith('https://'))) args.push('--cacert', CA_BUNDLE);
  urls.forEach((u, i) => args.push('-o', String(i), u));
  const read = (host: string, r: { code: number; stdout: string; stderr: string }) => {
    const out = r.stdout;
    // Each URL's own line: its number, HTTP status, curl's exit code and error message.
    const done = new Map<number, { status: number; exit: number; error: string }>();
    for (const m of out.matchAll(new RegExp(`^${mark}-http (\\d+) (\\d{3}) (\\d+) ?(.*)$`, 'gm'))) {
      done.set(Number(m[1]), { status: Number(m[2]), exit: Number(m[3]), error: m[4] });
    }
    const bodies = new Map<number, string>();
    const marks = [...out.matchAll(new RegExp(`\\n@@${mark} (\\d+|end)@@\\n`, 'g'))];
    marks.forEach((m, i) => {
      if (m[1] !== 'end' && marks[i + 1]) bodies.set(Number(m[1]), out.slice(m.index! + m[0].length, marks[i + 1].index));
    });
    const complete = marks.at(-1)?.[1] === 'end';
    return urls.map((url, i) => {
      const d = done.get(i);
      // No line of its own: curl itself failed (not installed, bad option, killed): every URL fails alike.
      if (!d || !complete) return new RemoteError(`GET ${url} from ${host}: ${r.stderr.trim() || `curl exit ${r.code}`}`);
      if (d.exit !== 0) return new RemoteError(`GET ${url} from ${host}: curl: (${d.exit}) ${d.error}`);
      return { status: d.status, body: bodies.get(i) ?? '' };
    });
  };
  // No limit of its own in a batch: curl's --max-time bounds it.
  return { cmd: ['sh', '-c', EACH_SCRIPT, 'pgha-http', mark, ...args], display: `curl ${urls.join(' ')}`, check: false, read };
}

/**
 * Shell text that sets $psql to the newest installed psql. Debian's `psql` is pg_wrapper, a Perl
 * script that costs a host about 30 ms of CPU per call before psql starts (psql itself and its
 * query cost less); for a connection by port or address it runs the newest client anyway.
 */
export const NEWEST_PSQL = 'psql=psql; for p in /usr/lib/postgresql/*/bin/psql; do [ -x "$p" ] && psql=$p; done';

/** argv running the newest installed psql with these arguments (see NEWEST_PSQL). */
export function psqlArgv(args: string[]): string[] {
  return ['sh', '-c', `${NEWEST_PSQL}; exec "$psql" "$@"`, 'psql', ...args];
}

/**
 * Runs SQL with psql on `from` (a database host) as the superuser, against host:port over TCP
 * (e.g. an HAProxy port). The password goes over stdin. Returns psql's unaligned output.
 */
export async function sqlVia(
  inv: Inventory,
  from: Connection,
  target: { host: string; port: number },
  sql: string,
  opts: { timeoutSec?: number; check?: boolean } = {},
) {
  const timeout = opts.timeoutSec ?? 10;
  // With TLS the server must prove it is the cluster's: a certificate of the cluster CA naming the address dialled.
  const ssl = inv.tls.enabled ? ` sslmode=verify-full sslrootcert=${CA_BUNDLE}` : '';
  const conninfo = `host=${target.host} port=${target.port} user=${inv.patroni.users.superuser} dbname=postgres connect_timeout=${Math.min(timeout, 5)}${ssl}`;
  // The whole of stdin is the password (`read` would strip its outer spaces and stop at a line break).
  const script = `PGPASSWORD=$(cat); export PGPASSWORD; exec psql -XAtq -v ON_ERROR_STOP=1 ${shellQuote(conninfo)} -c ${shellQuote(sql)}`;
  return from.run(script, {
    sudo: false,
    stdin: inv.secrets?.superuser_password ?? '',
    check: opts.check ?? true,
    timeoutMs: (timeout + 5) * 1000,
  });
}

/**
 * SQL on the local PostgreSQL of a database host, as the OS user postgres (peer authentication).
 * `overStdin`: the SQL goes over stdin, never on the command line (it holds a password verifier).
 */
export async function sqlLocal(inv: Inventory, conn: Connection, sql: string, opts: { check?: boolean; timeoutMs?: number; database?: string; overStdin?: boolean } = {}) {
  const common = { user: 'postgres', check: opts.check ?? true, timeoutMs: opts.timeoutMs ?? 15_000 };
  if (opts.overStdin) return conn.run(psqlArgv([...psqlLocalArgs(inv, opts.database), '-f', '-']), { ...common, stdin: sql, display: `psql -d ${opts.database ?? 'postgres'} (SQL on stdin)` });
  const { cmd, display } = sqlLocalCommand(inv, sql, opts.database);
  return conn.run(cmd, { ...common, display });
}

/** psql's arguments for the local PostgreSQL as its superuser, by peer authentication. */
function psqlLocalArgs(inv: Inventory, database = 'postgres'): string[] {
  return ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-p', String(inv.patroni.postgres_port), '-U', inv.patroni.users.superuser, '-d', database];
}

/** sqlLocal's command (the SQL on the command line: never one that holds a secret), for a runEach batch. */
export function sqlLocalCommand(inv: Inventory, sql: string, database?: string): EachCommand {
  const args = [...psqlLocalArgs(inv, database), '-c', sql];
  return { cmd: psqlArgv(args), user: 'postgres', display: ['psql', ...args].map(shellQuote).join(' ') };
}

/**
 * A psql that reads SQL on stdin as the superuser, to be kept open (Connection.sqlKept): no
 * ON_ERROR_STOP (an error must not end it), named in pg_stat_activity as pgha's.
 */
export function sqlSessionCommand(inv: Inventory, database = 'postgres'): EachCommand {
  const args = ['-XAtq', '-p', String(inv.patroni.postgres_port), '-U', inv.patroni.users.superuser, '-d', `dbname=${database} application_name=pgha`];
  return { cmd: psqlArgv(args), user: 'postgres', display: ['psql', ...args].map(shellQuote).join(' ') };
}

/** Rejects after `ms` with `what` timed out; the question itself is abandoned (its channel dies with the session). */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RemoteError(`${what}: no answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
