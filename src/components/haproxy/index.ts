// HAProxy, the clients' entry: the primary port routes to the leader, the replicas port to the
// streaming replicas, as Patroni's REST API tells HAProxy's health checks. The config is rendered
// whole; a changed config reloads HAProxy on that host only. Gate: on every HAProxy host the
// primary backend has exactly the Patroni leader up.
import { reloadService, service } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import { renderFile } from '../../render/template.js';
import { fileOp } from '../../render/op.js';
import { hostPort, sqlVia } from '../../session/remote.js';
import type { Session } from '../../session/session.js';
import { currentLeader } from '../patroni/cluster.js';
import { check, renderedFile, type Component } from '../types.js';
import { haproxyServers, primaryRouteProblem } from './state.js';
import { EXPORTER_PORTS } from '../monitoring/prometheus.js';

const CONFIG = '/etc/haproxy/haproxy.cfg';

/** Gate: every connected HAProxy host routes its primary port to the current leader only. */
export async function haproxyRoutesToLeader(session: Session, leader?: string): Promise<true | string> {
  const name = leader ?? (await currentLeader(session))?.name;
  if (!name) return 'no Patroni leader';
  for (const conn of session.withRole('haproxy')) {
    const problem = primaryRouteProblem(await haproxyServers(session.inv, conn), name);
    if (problem) return `${conn.target.name}: ${problem}`;
  }
  return true;
}

export const haproxy: Component = {
  name: 'haproxy',
  packages: (_inv, h) => (h.roles.has('haproxy') ? ['haproxy', 'curl'] : []),
  files({ inv, host }) {
    if (!host.roles.has('haproxy')) return [];
    const p = inv.patroni;
    const servers = inv.hostsWithRole('postgres').map((h) => ({ name: h.name, address: hostPort(h.address, p.postgres_port), noloadbalance: h.tags.noloadbalance }));
    const ctx = {
      cluster: inv.cluster,
      timing: { haproxy: inv.timing.haproxy },
      patroni: p,
      haproxy: inv.haproxy,
      postgresServers: servers,
      replicaServers: servers.filter((s) => !s.noloadbalance),
      monitoring: inv.monitoring ? { bind: hostPort(host.address, EXPORTER_PORTS.haproxy) } : null,
    };
    return [renderFile('haproxy', CONFIG, 'haproxy.cfg.hbs', ctx)];
  },
  async prepare(ctx) {
    await ctx.rollout.stage('haproxy', ctx.session.withRole('haproxy'), (conn) => [fileOp(renderedFile(ctx, conn.target.name, CONFIG), [reloadService('haproxy')]), service('haproxy')]);
  },
  async start(ctx) {
    if (ctx.rollout.check) return;
    await ctx.rollout.waitFor('HAProxy: the primary port routes to the leader', () => haproxyRoutesToLeader(ctx.session), { timeoutMs: 60_000, intervalMs: 1000 });
  },
  // Clients' view: psql from a database host to each HAProxy host's ports.
  verify: (session) =>
    session.inv.hostsWithRole('haproxy').map((h) =>
      check('haproxy', h.name, async () => {
        const { inv } = session;
        const client = session.withRole('postgres')[0];
        const leaderName = (await currentLeader(session))?.name;
        const leader = leaderName ? inv.host(leaderName) : undefined;
        // A temporary table is a real write that leaves nothing behind; a standby refuses it.
        const out = (
          await sqlVia(inv, client, { host: h.address, port: inv.haproxy.primary_port }, 'create temp table pgha_verify(x int); insert into pgha_verify values (1); select host(inet_server_addr()), x from pgha_verify')
        ).stdout.trim();
        const [addr, x] = out.split('|');
        if (x !== '1') throw new PghaError(`write/read through port ${inv.haproxy.primary_port} returned "${out}"`);
        if (leader && addr !== leader.address) throw new PghaError(`port ${inv.haproxy.primary_port} reached ${addr}, the leader is ${leader.name} (${leader.address})`);
        const rep = (await sqlVia(inv, client, { host: h.address, port: inv.haproxy.replicas_port }, 'select pg_is_in_recovery(), host(inet_server_addr())')).stdout.trim();
        const [inRecovery, repAddr] = rep.split('|');
        if (inRecovery !== 't') throw new PghaError(`port ${inv.haproxy.replicas_port} reached ${repAddr}, which is not in recovery`);
        return `port ${inv.haproxy.primary_port}: write+read on ${leader?.name ?? addr}; port ${inv.haproxy.replicas_port}: replica ${repAddr}`;
      }),
    ),
};
