// etcd, the DCS: /etc/default/etcd on every member, members started together (a member's first
// start waits for quorum, so each start is --no-block and a gate waits for the whole cluster),
// then every member healthy with one leader.
import { restartService, service } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import type { Host, Inventory } from '../../inventory/index.js';
import { CA_BUNDLE, certFile, keyFile, tlsOn, withTls } from '../tls/paths.js';
import { fileOp } from '../../render/op.js';
import { check, renderedFile, type Component, type Dcs } from '../types.js';
import { etcdDataDir, etcdClientUrl, etcdPeerUrl } from './endpoints.js';
import { etcdProblem, etcdReady, etcdState } from './state.js';

export const ETCD_CONFIG = '/etc/default/etcd';

/**
 * How a member's config file speaks: as the inventory says (plain or tls), or a step of moving a
 * running cluster to TLS: `trust`, every member first, still clear text everywhere but holding
 * its peer certificate and the CA, so that it can dial (and be dialled by) a member already
 * listening for peers over TLS; `transition`, peers over TLS, the client port answering TLS
 * (client certificates required) and clear text on the same port, advertising clear text for the
 * Patroni members not switched yet.
 */
export type EtcdTransport = 'plain' | 'trust' | 'tls' | 'transition';

/** /etc/default/etcd of one member. */
export function etcdConfigFile(inv: Inventory, host: Host, dcs: Dcs, transport: EtcdTransport = tlsOn(inv) ? 'tls' : 'plain'): RenderedFile {
  const tlsView = withTls(inv, true);
  const plainView = withTls(inv, false);
  const client = (v: Inventory) => etcdClientUrl(v, host);
  const listenClientUrls = {
    // The localhost listener of old: nothing of pgha's uses it, and with TLS it would be one more port.
    plain: `${client(plainView)},http://127.0.0.1:${inv.etcd.client_port}`,
    trust: `${client(plainView)},http://127.0.0.1:${inv.etcd.client_port}`,
    tls: client(tlsView),
    // One port, both: etcd tells TLS from clear text per connection.
    transition: `${client(plainView)},${client(tlsView)}`,
  }[transport];
  const peerView = transport === 'plain' || transport === 'trust' ? plainView : tlsView;
  const ctx = {
    cluster: inv.cluster,
    host,
    etcd: {
      clientPort: inv.etcd.client_port,
      dataDir: etcdDataDir(inv),
      peerUrl: etcdPeerUrl(peerView, host),
      listenClientUrls,
      advertiseClientUrl: client(transport === 'tls' ? tlsView : plainView),
      initialCluster: inv.hostsWithRole('etcd').map((h) => `${h.name}=${etcdPeerUrl(peerView, h)}`).join(','),
      token: `pgha-${inv.cluster.name}`,
      // Patroni's `etcd:` DCS speaks the v2 API.
      enableV2: dcs === 'etcd',
      tls: transport === 'tls' || transport === 'transition',
      trust: transport === 'trust',
      transition: transport === 'transition',
    },
    tls: { cert: certFile('etcd'), key: keyFile('etcd'), ca: CA_BUNDLE },
  };
  return renderFile('etcd', ETCD_CONFIG, 'etcd.default.hbs', ctx);
}

export const etcd: Component = {
  name: 'etcd',
  packages: (_inv, h) => (h.roles.has('etcd') ? ['etcd-server', 'etcd-client'] : []),
  files({ inv, host, dcs }) {
    if (!host.roles.has('etcd')) return [];
    return [etcdConfigFile(inv, host, dcs)];
  },
  async prepare(ctx) {
    await ctx.rollout.stage('etcd config', ctx.session.withRole('etcd'), (conn) => [
      fileOp(renderedFile(ctx, conn.target.name, ETCD_CONFIG), [restartService('etcd', { noBlock: true })]),
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
