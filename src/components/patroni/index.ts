// PostgreSQL under Patroni. prepare: config.yml on every member (a changed one reloads a running
// Patroni). start: Patroni on one member first (the current leader, or the first failover
// candidate of a new cluster) until it leads, then on the others until each streams from it;
// then the dynamic settings, which live in the DCS after the bootstrap, through PATCH /config.
import { reloadService, service } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import { fileOp } from '../../render/op.js';
import { waitFor } from '../../engine/index.js';
import { check, renderedFile, type Component } from '../types.js';
import { anyPatroniCluster, isLeaderRole, leaderOf, membersStreaming, patroniHasLeader } from './cluster.js';
import { dynamicConfigOp } from './config.js';
import { patroniFiles } from './files.js';
import { planMembers } from './members.js';
import { PATRONI_CONFIG, postgresMajor } from './paths.js';
import { PATRONI_RELEASES } from './version.js';

export const patroni: Component = {
  name: 'patroni',
  packages: (inv, h, release) => (h.roles.has('postgres') ? [`postgresql-${postgresMajor(inv, release)}`, ...PATRONI_RELEASES[release.name].packages, 'curl'] : []),
  // PostgreSQL's server package brings its client and libpq5 (one source); Patroni is its own.
  upgrades: (inv, h, release) => (h.roles.has('postgres') ? [`postgresql-${postgresMajor(inv, release)}`, 'patroni'] : []),
  files: patroniFiles,
  plan: planMembers,
  platformProblem(inv, platform) {
    const asked = inv.cluster.postgres_version;
    const shipped = PATRONI_RELEASES[platform.release.name].postgres;
    if (asked === undefined || asked === shipped || inv.packages.postgresql_apt_repository) return null;
    return (
      `cluster.postgres_version ${asked}: ${platform.release.label} ships PostgreSQL ${shipped} only; leave postgres_version out ` +
      `(the release's default, ${shipped}) or set packages.postgresql_apt_repository: true`
    );
  },
  async prepare(ctx) {
    await ctx.rollout.stage('patroni config', ctx.session.withRole('postgres'), (conn) => [
      fileOp(renderedFile(ctx, conn.target.name, PATRONI_CONFIG), [reloadService('patroni')]),
    ]);
  },
  async start(ctx) {
    const { session, rollout } = ctx;
    const { inv } = session;
    const members = session.withRole('postgres');
    const found = await anyPatroniCluster(session);
    const leader = found && leaderOf(found.cluster);
    if (rollout.check) {
      await rollout.stage('patroni start', members, () => [service('patroni')]);
      // The dynamic config is the cluster's: asked of the leader, or (a leader that leaves is switched
      // away from first) of a member that stays.
      const staying = inv.hostsWithRole('postgres').map((h) => h.name);
      const via = leader && (staying.includes(leader.name) ? leader.name : found.cluster.members.map((m) => m.name).find((n) => staying.includes(n)));
      if (via) await rollout.stage('patroni dynamic config', [session.conn(via)], () => [dynamicConfigOp(ctx, inv.host(via))]);
      return;
    }
    const first = leader ? inv.host(leader.name) : inv.hostsWithRole('postgres').find((h) => !h.tags.nofailover)!;
    await rollout.stage(`patroni start (${first.name})`, [session.conn(first)], () => [service('patroni')]);
    await rollout.waitFor('Patroni: a leader is running', () => patroniHasLeader(session), { timeoutMs: 180_000, intervalMs: 1000 });
    await ctx.leaderUp();
    await ctx.topology.run('patroni.start', ctx);

    const others = members.filter((c) => c.target.name !== first.name);
    if (others.length) await rollout.stage('patroni start (replicas)', others, () => [service('patroni')]);
    await rollout.waitFor('Patroni: every replica streaming from the leader', () => membersStreaming(session), { timeoutMs: 600_000, intervalMs: 2000 });

    const now = await anyPatroniCluster(session);
    const leaderHost = inv.host(leaderOf(now!.cluster)!.name);
    await rollout.stage('patroni dynamic config', [session.conn(leaderHost)], () => [dynamicConfigOp(ctx, leaderHost)]);
    await ctx.topology.run('patroni.leave', ctx);
  },
  verify: (session) => [
    check('patroni', undefined, async () => {
      const { inv } = session;
      const found = await anyPatroniCluster(session);
      if (!found) throw new PghaError('no Patroni REST API answers');
      const leaders = found.cluster.members.filter((m) => isLeaderRole(m.role));
      const leader = leaderOf(found.cluster);
      if (leaders.length !== 1 || !leader) throw new PghaError(`expected exactly one running leader, found ${leaders.map((m) => `${m.name} (${m.state})`).join(', ') || 'none'}`);
      // A few seconds of grace: the pgBackRest check running alongside switches WAL, and a replica
      // needs a moment to replay the switch.
      await waitFor('every replica streaming', () => membersStreaming(session), { timeoutMs: 6000, intervalMs: 1000 });
      return `leader ${leader.name}; ${found.cluster.members.length - 1} replica(s) streaming within ${inv.patroni.maximum_lag_on_failover} bytes`;
    }),
  ],
};
