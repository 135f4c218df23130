// etcd, the DCS: /etc/default/etcd on every member, members started together (a member's first
// start waits for quorum, so each start is --no-block and a gate waits for the whole cluster),
// then every member healthy with one leader.
import { restartService, service } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import { renderFile } from '../../render/template.js';
import { fileOp } from '../../render/op.js';
import { check, renderedFile, type Component } from '../types.js';
import { etcdDataDir, etcdClientUrl, etcdPeerUrl } from './endpoints.js';
import { etcdProblem, etcdReady, etcdState } from './state.js';

const CONFIG = '/etc/default/etcd';

export const etcd: Component = {
  name: 'etcd',
  packages: (_inv, h) => (h.roles.has('etcd') ? ['etcd-server', 'etcd-client'] : []),
  upgrades: (_inv, h) => (h.roles.has('etcd') ? ['etcd-server', 'etcd-client'] : []),
  files({ inv, host, dcs }) {
    if (!host.roles.has('etcd')) return [];
    const ctx = {
      cluster: inv.cluster,
      host,
      etcd: {
        clientPort: inv.etcd.client_port,
        dataDir: etcdDataDir(inv),
        peerUrl: etcdPeerUrl(inv, host),
        clientUrl: etcdClientUrl(inv, host),
        initialCluster: inv.hostsWithRole('etcd').map((h) => `${h.name}=${etcdPeerUrl(inv, h)}`).join(','),
        token: `pgha-${inv.cluster.name}`,
        // Patroni's `etcd:` DCS speaks the v2 API.
        enableV2: dcs === 'etcd',
      },
    };
    return [renderFile('etcd', CONFIG, 'etcd.default.hbs', ctx)];
  },
  async prepare(ctx) {
    await ctx.rollout.stage('etcd config', ctx.session.withRole('etcd'), (conn) => [
      fileOp(renderedFile(ctx, conn.target.name, CONFIG), [restartService('etcd', { noBlock: true })]),
    ]);
  },
  async start(ctx) {
    await ctx.rollout.stage('etcd', ctx.session.withRole('etcd'), () => [service('etcd', { noBlock: true })]);
    if (ctx.rollout.check) return;
    await ctx.rollout.waitFor('etcd: every member healthy, one leader', () => etcdReady(ctx.session), { timeoutMs: 120_000, intervalMs: 1000 });
  },
  verify: (session) => [
    check('etcd', undefined, async () => {
      const members = await etcdState(session.inv, session.withRole('etcd')[0]);
      const problem = etcdProblem(members);
      if (problem !== true) throw new PghaError(problem);
      return `${members.length} members healthy, leader ${members.find((m) => m.leader)!.name}`;
    }),
  ],
};
