// HAProxy's own view of its servers (a fact: its stats CSV read on the HAProxy host, plus a pure
// parser), and THE definition of where it routes each port: the servers it has UP.
import type { Inventory } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import { RemoteError } from '../../session/remote.js';

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

/** The servers of a backend ('primary' or 'replicas') that HAProxy has UP: where that port routes. */
export function upServers(servers: HaproxyServer[], backend: 'primary' | 'replicas'): string[] {
  return servers.filter((s) => s.backend === backend && s.status.startsWith('UP')).map((s) => s.server);
}

/** null when the primary port routes to `leader` only; else what it routes to instead. */
export function primaryRouteProblem(servers: HaproxyServer[], leader: string): string | null {
  const up = upServers(servers, 'primary');
  return up.length === 1 && up[0] === leader ? null : `primary backend has [${up.join(', ')}] up, leader is ${leader}`;
}

/** HAProxy's stats page as CSV, asked on the HAProxy host itself. */
export function statsCsvUrl(inv: Inventory): string {
  return `http://127.0.0.1:${inv.haproxy.stats_port}/;csv`;
}

/** HAProxy's stats, from its stats listener on the HAProxy host. */
export async function haproxyServers(inv: Inventory, conn: Connection): Promise<HaproxyServer[]> {
  const r = await conn.run(['curl', '-sS', '--max-time', '3', statsCsvUrl(inv)], {
    sudo: false,
    check: false,
    timeoutMs: 13_000,
  });
  if (r.code !== 0) throw new RemoteError(`HAProxy stats on ${conn.target.name}: ${r.stderr.trim() || `curl exit ${r.code}`}`);
  return parseHaproxyCsv(r.stdout);
}
