// Reading the cluster's live state. Every question is asked FROM a host over SSH (the operator
// may reach the hosts only by SSH): Patroni's REST API, etcdctl, HAProxy's stats, psql.
import type { Host, Inventory } from '../inventory/index.js';
import type { Connection } from '../ssh/index.js';
import { shellQuote } from '../ssh/index.js';

// ---------------------------------------------------------------- Patroni

export type PatroniRole = 'leader' | 'replica' | 'sync_standby' | 'standby_leader';

/** One member as Patroni's GET /cluster reports it (3.0.2 and later spellings). */
export interface PatroniMember {
  name: string;
  role: PatroniRole;
  state: string;
  host?: string;
  port?: number;
  timeline?: number;
  lag?: number | 'unknown';
  pending_restart?: boolean;
  tags?: Record<string, unknown>;
}

export interface PatroniCluster {
  members: PatroniMember[];
  pause?: boolean;
  scheduled_switchover?: { at: string; from?: string; to?: string };
}

export function restapiUrl(inv: Inventory, h: Host, path: string): string {
  const addr = h.address.includes(':') ? `[${h.address}]` : h.address;
  return `http://${addr}:${inv.patroni.restapi_port}${path}`;
}

/**
 * One parameter of a curl config file, double-quoted with the escapes curl documents for it
 * (`-K, --config`): a quote, backslash or line break in a value can then neither end it nor
 * start another option (an extra `url` or `output` line).
 */
export function curlConfigValue(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL character cannot be passed to curl');
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

/** An HTTP request made by curl on `from`. Never throws for an HTTP status; throws when curl fails. */
export async function httpFrom(
  from: Connection,
  method: string,
  url: string,
  opts: { body?: unknown; auth?: Inventory; timeoutSec?: number } = {},
): Promise<HttpResult> {
  const args = ['curl', '-sS', '--max-time', String(opts.timeoutSec ?? 3), '-X', method, '-w', '\\n%{http_code}'];
  let stdin: string | undefined;
  if (opts.auth) {
    args.push('-K', '-');
    stdin = curlAuthConfig(opts.auth);
  }
  if (opts.body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(opts.body));
  args.push(url);
  const r = await from.run(args, { sudo: false, stdin, check: false, timeoutMs: ((opts.timeoutSec ?? 3) + 10) * 1000 });
  if (r.code !== 0) throw new Error(`${method} ${url} from ${from.target.name}: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
}

/** GET /cluster from the Patroni of `h`, asked on that host itself. */
export async function patroniCluster(inv: Inventory, conn: Connection, h: Host): Promise<PatroniCluster> {
  const r = await httpFrom(conn, 'GET', restapiUrl(inv, h, '/cluster'));
  if (r.status !== 200) throw new Error(`Patroni on ${h.name} answered ${r.status} to GET /cluster`);
  return JSON.parse(r.body) as PatroniCluster;
}

/** The first answer of GET /cluster from the postgres hosts, in order; null when none answers. */
export async function anyPatroniCluster(inv: Inventory, conns: (h: Host) => Connection | undefined): Promise<{ from: Host; cluster: PatroniCluster } | null> {
  for (const h of inv.hostsWithRole('postgres')) {
    const c = conns(h);
    if (!c) continue;
    try {
      return { from: h, cluster: await patroniCluster(inv, c, h) };
    } catch {
      // try the next member
    }
  }
  return null;
}

export const isRunningState = (state: string) => state === 'running' || state === 'streaming';

export function leaderOf(c: PatroniCluster): PatroniMember | undefined {
  return c.members.find((m) => (m.role === 'leader' || m.role === 'standby_leader') && isRunningState(m.state));
}

// ---------------------------------------------------------------- etcd

export interface EtcdMemberState {
  name: string;
  endpoint: string;
  healthy: boolean;
  leader: boolean;
  error?: string;
}

export function etcdEndpoints(inv: Inventory): string[] {
  return inv.hostsWithRole('etcd').map((h) => `http://${h.address.includes(':') ? `[${h.address}]` : h.address}:${inv.etcd.client_port}`);
}

// etcd's ids are 64-bit: keep them as strings, JSON numbers would lose digits.
const quoteBigInts = (text: string) => text.replace(/("(?:member_id|leader|cluster_id)"):(\d+)/g, '$1:"$2"');

/** Every etcd member's health and which one leads, asked with etcdctl on `from`. */
export async function etcdState(inv: Inventory, from: Connection): Promise<EtcdMemberState[]> {
  const endpoints = etcdEndpoints(inv);
  const hosts = inv.hostsWithRole('etcd');
  const base = ['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=3s', `--endpoints=${endpoints.join(',')}`];
  const [health, status] = await Promise.all([
    from.run([...base, 'endpoint', 'health', '-w', 'json'], { sudo: false, check: false, timeoutMs: 15_000 }),
    from.run([...base, 'endpoint', 'status', '-w', 'json'], { sudo: false, check: false, timeoutMs: 15_000 }),
  ]);
  const healthList = parseJsonArray<{ endpoint: string; health: boolean; error?: string }>(health.stdout);
  const statusList = parseJsonArray<{ Endpoint: string; Status: { header: { member_id: string }; leader: string } }>(quoteBigInts(status.stdout));
  return hosts.map((h, i) => {
    const ep = endpoints[i];
    const hl = healthList.find((x) => x.endpoint === ep);
    const st = statusList.find((x) => x.Endpoint === ep);
    const error = hl?.error ?? (st ? undefined : firstLineAbout(ep, status.stderr + health.stderr) ?? 'no answer');
    return {
      name: h.name,
      endpoint: ep,
      healthy: hl?.health === true,
      leader: st !== undefined && st.Status.header.member_id === st.Status.leader,
      ...(hl?.health === true ? {} : { error }),
    };
  });
}

function parseJsonArray<T>(text: string): T[] {
  const start = text.indexOf('[');
  if (start < 0) return [];
  try {
    return JSON.parse(text.slice(start)) as T[];
  } catch {
    return [];
  }
}

function firstLineAbout(endpoint: string, text: string): string | undefined {
  return text
    .split('\n')
    .find((l) => l.includes(endpoint))
    ?.trim();
}

// ---------------------------------------------------------------- HAProxy

export interface HaproxyServer {
  backend: string;
  server: string;
  status: string; // UP, DOWN, MAINT, "UP 1/2", ...
}

/** Parses HAProxy's stats CSV (`show stat` / `/;csv`): one row per server, frontends/backends dropped. */
export function parseHaproxyCsv(csv: string): HaproxyServer[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0 || !lines[0].startsWith('# ')) return [];
  const header = lines[0].slice(2).split(',');
  const col = (name: string) => header.indexOf(name);
  const [px, sv, st] = [col('pxname'), col('svname'), col('status')];
  return lines
    .slice(1)
    .map((l) => l.split(','))
    .filter((f) => f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND')
    .map((f) => ({ backend: f[px], server: f[sv], status: f[st] }));
}

/** HAProxy's own view of its servers, from its stats listener on the HAProxy host. */
export async function haproxyServers(inv: Inventory, conn: Connection): Promise<HaproxyServer[]> {
  const r = await conn.run(['curl', '-sS', '--max-time', '3', `http://127.0.0.1:${inv.haproxy.stats_port}/;csv`], {
    sudo: false,
    check: false,
    timeoutMs: 13_000,
  });
  if (r.code !== 0) throw new Error(`HAProxy stats on ${conn.target.name}: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  return parseHaproxyCsv(r.stdout);
}

// ---------------------------------------------------------------- SQL

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
  const conninfo = `host=${target.host} port=${target.port} user=${inv.patroni.users.superuser} dbname=postgres connect_timeout=${Math.min(timeout, 5)}`;
  // The whole of stdin is the password (`read` would strip its outer spaces and stop at a line break).
  const script = `PGPASSWORD=$(cat); export PGPASSWORD; exec psql -XAtq -v ON_ERROR_STOP=1 ${shellQuote(conninfo)} -c ${shellQuote(sql)}`;
  return from.run(script, {
    sudo: false,
    stdin: inv.secrets?.superuser_password ?? '',
    check: opts.check ?? true,
    timeoutMs: (timeout + 5) * 1000,
  });
}

/** SQL on the local PostgreSQL of a database host, as the OS user postgres (peer authentication). */
export async function sqlLocal(inv: Inventory, conn: Connection, sql: string, opts: { check?: boolean } = {}) {
  return conn.run(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-p', String(inv.patroni.postgres_port), '-U', inv.patroni.users.superuser, '-d', 'postgres', '-c', sql], {
    user: 'postgres',
    check: opts.check ?? true,
    timeoutMs: 15_000,
  });
}
