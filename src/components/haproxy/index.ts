// HAProxy, the clients' entry: the primary port routes to the leader, the replicas port to the
// streaming replicas, as Patroni's REST API tells HAProxy's health checks. The config is rendered
// whole; a changed config reloads HAProxy on that host only. Gate: on every HAProxy host the
// primary backend has exactly the Patroni leader up.
import { reloadService, service, waitFor, type Reporter } from '../../engine/index.js';
import type { Connection } from '../../ssh/index.js';
import { PghaError } from '../../errors.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { CA_BUNDLE, tlsOn } from '../tls/paths.js';
import { fileOp } from '../../render/op.js';
import { hostPort, sqlVia } from '../../session/remote.js';
import type { Session } from '../../session/session.js';
import type { Host, Inventory } from '../../inventory/index.js';
import { currentLeader, leaderOf } from '../patroni/cluster.js';
import { check, renderedFile, type ApplyContext, type Component, type TopologyFacts, type TopologyStep } from '../types.js';
import { haproxyServers, primaryRouteProblem } from './state.js';
import { EXPORTER_PORTS } from '../monitoring/prometheus.js';

export const HAPROXY_CONFIG = '/etc/haproxy/haproxy.cfg';

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

/** Day 2: HAProxy hosts that start routing (new, or not running pgha's config) and hosts that no longer route. */
function plan(facts: TopologyFacts, inv: Inventory): TopologyStep[] {
  if (!facts.patroni || !leaderOf(facts.patroni.cluster)) return []; // a new cluster: apply's stages start everything
  const joining = inv.hostsWithRole('haproxy').filter((h) => {
    const f = facts.hosts.get(h.name);
    return !f?.haproxy.active || !f.haproxy.pgha;
  });
  const leaving = inv.hosts.filter((h) => !h.roles.has('haproxy') && facts.hosts.get(h.name)?.haproxy.active && facts.hosts.get(h.name)?.haproxy.pgha);
  const { primary_port: primary, replicas_port: replicas } = inv.haproxy;
  return [
    ...joining.map((h): TopologyStep => ({
      phase: 'haproxy.prepare',
      text: `haproxy: ${h.name} starts routing clients: port ${primary} to the leader, port ${replicas} to the replicas`,
      run: (ctx) => join(ctx, h),
    })),
    ...leaving.map((h): TopologyStep => ({
      phase: 'haproxy.start',
      text: `haproxy: ${h.name} stops routing (HAProxy stopped and disabled): clients must no longer use its address`,
      run: (ctx) => ctx.rollout.stage(`haproxy leave (${h.name})`, [ctx.session.conn(h)], () => [service('haproxy', { running: false, enabled: false })]).then(() => {}),
    })),
  ];
}

async function join(ctx: ApplyContext, h: Host): Promise<void> {
  const conn = ctx.session.conn(h);
  await ctx.rollout.stage(`haproxy join (${h.name})`, [conn], () => [fileOp(renderedFile(ctx, h.name, HAPROXY_CONFIG), [reloadService('haproxy')]), service('haproxy')]);
  await ctx.rollout.waitFor(`HAProxy on ${h.name}: the primary port routes to the leader`, async () => {
    const leader = (await currentLeader(ctx.session))?.name;
    if (!leader) return 'no Patroni leader';
    return primaryRouteProblem(await haproxyServers(ctx.session.inv, conn), leader) ?? true;
  }, { timeoutMs: 60_000, intervalMs: 1000 });
}

/**
 * haproxy.cfg. `restTls` says, per member, whether its REST API speaks TLS: as the inventory
 * says, except while pgha moves a running cluster to TLS one member at a time.
 */
export function haproxyConfigFile(inv: Inventory, host: Host, restTls: (member: string) => boolean = () => tlsOn(inv)): RenderedFile {
  const p = inv.patroni;
  const servers = inv.hostsWithRole('postgres').map((h) => ({ name: h.name, address: hostPort(h.address, p.postgres_port), noloadbalance: h.tags.noloadbalance, restTls: restTls(h.name) }));
  const ctx = {
    cluster: inv.cluster,
    timing: { haproxy: inv.timing.haproxy },
    patroni: p,
    haproxy: inv.haproxy,
    postgresServers: servers,
    replicaServers: servers.filter((s) => !s.noloadbalance),
    tls: tlsOn(inv),
    tlsCa: CA_BUNDLE,
    monitoring: inv.monitoring ? { bind: hostPort(host.address, EXPORTER_PORTS.haproxy) } : null,
  };
  return renderFile('haproxy', HAPROXY_CONFIG, 'haproxy.cfg.hbs', ctx);
}

/**
 * `systemctl reload haproxy` on one host (a new process takes over the listeners; connections
 * open on the old one finish there), then waits until it routes the primary port to the leader.
 */
export async function reloadAndWait(session: Session, conn: Connection, reporter?: Reporter): Promise<void> {
  const active = await conn.run(['systemctl', 'is-active', '--quiet', 'haproxy'], { check: false });
  if (active.code !== 0) return;
  await conn.run(['systemctl', 'reload', 'haproxy']);
  const leader = (await currentLeader(session))?.name;
  if (!leader) return;
  await waitFor(
    `HAProxy on ${conn.target.name} routing to ${leader}`,
    async () => primaryRouteProblem(await haproxyServers(session.inv, conn), leader) ?? true,
    { timeoutMs: 60_000, intervalMs: 500, reporter },
  );
}

export const haproxy: Component = {
  name: 'haproxy',
  // socat speaks to HAProxy's runtime API (runtime.ts).
  packages: (_inv, h) => (h.roles.has('haproxy') ? ['haproxy', 'curl', 'socat'] : []),
  upgrades: (_inv, h) => (h.roles.has('haproxy') ? ['haproxy'] : []),
  files({ inv, host }) {
    if (!host.roles.has('haproxy')) return [];
    return [haproxyConfigFile(inv, host)];
  },
  plan,
  async prepare(ctx) {
    await ctx.topology.run('haproxy.prepare', ctx);
    await ctx.rollout.stage('haproxy', ctx.session.withRole('haproxy'), (conn) => [fileOp(renderedFile(ctx, conn.target.name, HAPROXY_CONFIG), [reloadService('haproxy')]), service('haproxy')]);
  },
  async start(ctx) {
    if (!ctx.rollout.check) {
      await ctx.rollout.waitFor('HAProxy: the primary port routes to the leader', () => haproxyRoutesToLeader(ctx.session), { timeoutMs: 60_000, intervalMs: 1000 });
    }
    await ctx.topology.run('haproxy.start', ctx);
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
