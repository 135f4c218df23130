// etcd, the DCS: /etc/default/etcd on every member, members started together (a member's first
// start waits for quorum, so each start is --no-block and a gate waits for the whole cluster),
// then every member healthy with one leader. On a live cluster the membership changes one member
// at a time (membership.ts): members that are down leave first, new ones join (prepare, before
// Patroni's list of etcd hosts names them), members that answer leave last (start, after
// Patroni's list no longer names them).
import { restartService, service, type Handler, type Operation } from '../../engine/index.js';
import { InputError, PghaError } from '../../errors.js';
import type { Host, Inventory } from '../../inventory/index.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { fileOp } from '../../render/op.js';
import { CA_BUNDLE, certFile, keyFile, scheme, tlsOn, withTls } from '../tls/paths.js';
import type { ReleaseName } from '../base/release.js';
import type { Connection } from '../../ssh/index.js';
import { check, renderedFile, type ApplyContext, type Component, type Dcs, type EtcdClusterState, type TopologyFacts, type TopologyStep } from '../types.js';
import { etcdDataDir, etcdClientUrl, etcdPeerUrl } from './endpoints.js';
import { hostPort } from '../../session/remote.js';
import { EXPORTER_PORTS } from '../monitoring/prometheus.js';
import {
  describeChange,
  hasLearners,
  joinInitialCluster,
  memberAddOp,
  memberLabel,
  membershipProblem,
  memberRemoveOp,
  planMembership,
  promoteLearner,
  readMembership,
  type EtcdLive,
  type MemberTarget,
  type MembershipChange,
} from './membership.js';
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

/**
 * /etc/default/etcd of one member. `state` and `initialCluster` are read by etcd on a first start
 * only: "new" with every inventory member (a cluster bootstrapping), or "existing" with the members
 * a joining one finds.
 */
export function etcdConfigFile(
  inv: Inventory,
  host: Host,
  dcs: Dcs,
  opts: { transport?: EtcdTransport; state?: EtcdClusterState; initialCluster?: string } = {},
): RenderedFile {
  const transport = opts.transport ?? (tlsOn(inv) ? 'tls' : 'plain');
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
      initialCluster: opts.initialCluster ?? inv.hostsWithRole('etcd').map((h) => `${h.name}=${etcdPeerUrl(peerView, h)}`).join(','),
      state: opts.state ?? 'new',
      token: `pgha-${inv.cluster.name}`,
      // Patroni's `etcd:` DCS speaks the v2 API.
      enableV2: dcs === 'etcd',
      // monitoring: /metrics on a listener of its own, in clear text (see EXPORTER_PORTS).
      metricsUrl: inv.monitoring ? `http://${hostPort(host.address, EXPORTER_PORTS.etcd)}` : null,
      tls: transport === 'tls' || transport === 'transition',
      trust: transport === 'trust',
      transition: transport === 'transition',
    },
    tls: { cert: certFile('etcd'), key: keyFile('etcd'), ca: CA_BUNDLE },
  };
  return renderFile('etcd', ETCD_CONFIG, 'etcd.default.hbs', ctx);
}

// etcd reads these only on a member's first start (an empty data directory).
const FIRST_START_ONLY = /^ETCD_INITIAL_CLUSTER(_STATE)?=/;
/** The settings a running member uses: the config without comments and the lines etcd reads only on a first start. */
export const runtimePart = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !FIRST_START_ONLY.test(l))
    .join('\n');

/** The config file: a change restarts etcd only when more than its first-start lines changed. */
function configOp(f: RenderedFile, restart: Handler): Operation {
  const inner = fileOp(f);
  const op: Operation = {
    ...inner,
    notify: [],
    async check(conn, facts) {
      const change = await inner.check(conn, facts);
      op.notify = [];
      if (!change) return null;
      const old = await conn.readFile(f.path);
      if (old === null || runtimePart(old) !== runtimePart(f.content)) {
        op.notify = [restart];
        return change;
      }
      return { ...change, summary: `${change.summary} (no setting a running member uses: no restart)` };
    },
  };
  return op;
}

const restartEtcd = restartService('etcd', { noBlock: true });

const targetOf = (inv: Inventory, h: Host): MemberTarget => ({ name: h.name, peerUrl: etcdPeerUrl(inv, h), clientUrl: etcdClientUrl(inv, h) });

/** A URL in the inventory's scheme: which member a URL names does not depend on whether it speaks TLS. */
const inScheme = (inv: Inventory, url: string) => url.replace(/^https?:/, `${scheme(inv)}:`);

/**
 * The membership apply read, every URL in the inventory's scheme, and whether etcd spoke another
 * one: a cluster still in clear text (deployed before TLS, or with tls: false), which the tls
 * component moves to TLS before etcd's stages run; or one with TLS under an inventory saying
 * tls: false (which the tls component refuses).
 */
export function liveInScheme(inv: Inventory, live: EtcdLive): { live: EtcdLive; otherScheme: boolean } {
  const urls = live.members.flatMap((m) => [...m.peerUrls, ...m.clientUrls]);
  const otherScheme = urls.some((u) => inScheme(inv, u) !== u);
  const members = live.members.map((m) => ({ ...m, peerUrls: m.peerUrls.map((u) => inScheme(inv, u)), clientUrls: m.clientUrls.map((u) => inScheme(inv, u)) }));
  return { live: { ...live, members }, otherScheme };
}

/** Target hosts that are members already (started voters, not re-created by a replace): their files are written as usual. */
function currentMembers(inv: Inventory, facts: TopologyFacts): Host[] {
  if (!facts.etcd) return inv.hostsWithRole('etcd');
  const { live } = liveInScheme(inv, facts.etcd);
  return inv.hostsWithRole('etcd').filter((h) => {
    const m = live.members.find((x) => x.peerUrls.includes(etcdPeerUrl(inv, h)));
    return m !== undefined && m.name !== '' && !m.learner && !(facts.replace === h.name && !m.healthy);
  });
}

/** Client URLs etcdctl may ask: the members apply found and the inventory's (the way the cluster speaks by the time they are asked). */
function knownEndpoints(inv: Inventory, facts: TopologyFacts): string[] {
  const found = facts.etcd ? liveInScheme(inv, facts.etcd).live.members.flatMap((m) => m.clientUrls) : [];
  return [...new Set([...found, ...inv.hostsWithRole('etcd').map((h) => etcdClientUrl(inv, h))])];
}

/**
 * A host to run etcdctl on for a membership change: a member that answered and stays (a host of
 * roles.etcd), never `avoid` (the member that leaves).
 */
function executor(ctx: ApplyContext, avoid?: string): Connection {
  const { inv, conns } = ctx.session;
  const live = ctx.topology.facts.etcd;
  const answered = (name: string) => live?.members.some((m) => m.name === name && m.healthy) ?? false;
  const host =
    inv.hostsWithRole('etcd').find((h) => h.name !== avoid && conns.has(h.name) && answered(h.name)) ??
    inv.hosts.find((h) => h.name !== avoid && conns.has(h.name) && answered(h.name));
  if (!host) throw new PghaError('no etcd member that answers is reachable over SSH to run etcdctl on');
  return ctx.session.conn(host);
}

/** The membership now, asked on `conn`. */
async function membershipNow(ctx: ApplyContext, conn: Connection): Promise<EtcdLive> {
  const live = await readMembership(conn, knownEndpoints(ctx.session.inv, ctx.topology.facts));
  if (!live) throw new PghaError(`${conn.target.name}: no etcd member answers etcdctl member list`);
  return live;
}

const startedUrls = (live: EtcdLive) => live.members.filter((m) => m.name !== '').flatMap((m) => m.clientUrls);

/** Gate: every member answers, none is a learner, one leads. */
async function waitMembership(ctx: ApplyContext, conn: Connection, what: string): Promise<void> {
  await ctx.rollout.waitFor(what, async () => membershipProblem(await membershipNow(ctx, conn)), { timeoutMs: 120_000, intervalMs: 1000 });
}

/** A new member joins: added (as a learner where etcd has them), started with state "existing", promoted. */
async function join(ctx: ApplyContext, change: Extract<MembershipChange, { kind: 'add' }>): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const host = inv.host(change.target.name);
  const conn = session.conn(host);
  const peers = executor(ctx);
  let live = await membershipNow(ctx, peers);
  const endpoints = () => startedUrls(live);
  const dataDir = etcdDataDir(inv);
  let joining: RenderedFile | undefined;
  await rollout.stage(`etcd join (${host.name})`, [conn], () => [
    memberAddOp(endpoints, change.target, change.learner),
    {
      describe: 'etcd stopped with an empty data directory before it joins',
      needs: { services: ['etcd'], files: [dataDir] },
      async check(c, facts) {
        live = await membershipNow(ctx, peers);
        const me = live.members.find((m) => m.peerUrls.includes(change.target.peerUrl));
        if (me?.name) return null; // started once already: its data is its own
        const running = (await facts.service('etcd')).active === 'active';
        const data = (await facts.file(dataDir)).exists;
        const parts = [...(running ? ['stop etcd (the member Debian starts on install)'] : []), ...(data ? [`remove ${dataDir} (a new member starts empty)`] : [])];
        return parts.length ? { summary: parts.join(', ') } : null;
      },
      async apply(c, facts) {
        await c.run(['systemctl', 'stop', 'etcd']);
        await c.run(['rm', '-rf', '--', dataDir]);
        facts.invalidate({ services: ['etcd'], files: [dataDir] });
      },
    },
    lazyFileOp(ETCD_CONFIG, async () => {
      joining ??= etcdConfigFile(inv, host, ctx.dcs, { state: 'existing', initialCluster: joinInitialCluster(live.members, change.target) });
      return joining;
    }),
    service('etcd', { noBlock: true }),
  ]);
  if (change.learner) {
    await rollout.waitFor(`etcd: ${host.name} caught up and promoted to a voting member`, async () => {
      live = await membershipNow(ctx, peers);
      const me = live.members.find((m) => m.peerUrls.includes(change.target.peerUrl));
      if (!me) throw new PghaError(`${host.name} is no longer an etcd member`);
      if (!me.learner) return true;
      return promoteLearner(peers, startedUrls(live).filter((u) => !me.clientUrls.includes(u)), me.id);
    }, { timeoutMs: 180_000, intervalMs: 1000 });
  }
  await waitMembership(ctx, peers, `etcd: ${host.name} a member, every member answers, one leader`);
}

/** A file op whose content is known only once the ops before it ran (check reads it then). */
function lazyFileOp(path: string, content: () => Promise<RenderedFile>): Operation {
  let inner: Operation | undefined;
  const get = async () => (inner ??= fileOp(await content()));
  return {
    describe: `file ${path}`,
    async check(conn, facts) {
      return (await get()).check(conn, facts);
    },
    async apply(conn, facts, progress) {
      return (await get()).apply(conn, facts, progress);
    },
  };
}

/** A member leaves: removed from the membership (its leadership handed over first), then stopped and its data removed. */
async function leave(ctx: ApplyContext, change: Extract<MembershipChange, { kind: 'remove' }>): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const onHost = change.host !== undefined && session.conns.has(change.host) && change.why !== 'replaced';
  const conn = onHost ? session.conn(change.host!) : executor(ctx, change.host);
  const peers = executor(ctx, change.host);
  const live = await membershipNow(ctx, peers);
  const dataDir = etcdDataDir(inv);
  const paths = [dataDir, ETCD_CONFIG];
  await rollout.stage(`etcd leave (${memberLabel(change.member)})`, [conn], () => [
    memberRemoveOp(() => startedUrls(live), change.member, (text) => rollout.reporter.progress(conn.target.name, text)),
    ...(onHost
      ? [
          service('etcd', { running: false, enabled: false }),
          {
            describe: `etcd data ${dataDir} and ${ETCD_CONFIG} removed`,
            needs: { files: paths },
            async check(_c, facts) {
              const exist = await Promise.all(paths.map(async (p) => (await facts.file(p)).exists));
              const there = paths.filter((_, i) => exist[i]);
              return there.length ? { summary: `remove ${there.join(' and ')}` } : null;
            },
            async apply(c, facts) {
              await c.run(['rm', '-rf', '--', ...paths]);
              facts.invalidate({ files: paths });
            },
          } satisfies Operation,
        ]
      : []),
  ]);
  await waitMembership(ctx, peers, `etcd: ${memberLabel(change.member)} gone, every member answers, one leader`);
}

function plan(facts: TopologyFacts, inv: Inventory): TopologyStep[] {
  if (!facts.etcd) return []; // no cluster yet: the members bootstrap together
  const { live, otherScheme } = liveInScheme(inv, facts.etcd);
  const { changes } = planMembership(
    live,
    inv.hostsWithRole('etcd').map((h) => targetOf(inv, h)),
    { inventoryHosts: inv.hosts.map((h) => h.name), replace: facts.replace, learners: hasLearners(live.version) },
  );
  if (changes.length && otherScheme) {
    const speaks = tlsOn(inv) ? 'clear text' : 'TLS';
    throw new InputError(
      `etcd still speaks ${speaks} (${facts.etcd.members[0]?.peerUrls[0] ?? 'its peer URLs'}) and the inventory changes its members (${changes.map(describeChange).join('; ')}): pgha does one at a time`,
      [`Safe order: apply the inventory with the hosts etcd has now (${live.members.map(memberLabel).join(', ')}) first, which ${tlsOn(inv) ? 'moves the running cluster to TLS' : 'is refused while the cluster runs TLS'}; then change roles.etcd.`],
    );
  }
  return changes.map((c) => ({
    // Members that are down leave, and new ones join, before Patroni's list of etcd hosts changes;
    // members that answer leave after it no longer names them.
    phase: c.kind === 'remove' && c.why === 'leaves' ? 'etcd.start' : 'etcd.prepare',
    text: describeChange(c),
    run: (ctx: ApplyContext) => (c.kind === 'add' ? join(ctx, c) : leave(ctx, c)),
  }));
}

/**
 * What each Debian release's etcd offers Patroni: 3.4.23 on Debian 12 serves the v2 API when asked
 * (ETCD_ENABLE_V2), which Patroni 3.0.2 needs (see the DCS in the README); 3.5.16 on Debian 13
 * deprecates it and 3.6 removes it, so nothing pgha does there may depend on it. Both take the same
 * ETCD_* settings otherwise, and pgha's etcdctl calls use the v3 API on both.
 */
export const ETCD_RELEASES: Record<ReleaseName, { etcd: string; v2: 'available' | 'deprecated' }> = {
  bookworm: { etcd: '3.4', v2: 'available' },
  trixie: { etcd: '3.5', v2: 'deprecated' },
};

export const etcd: Component = {
  name: 'etcd',
  // curl: etcd's state is asked over its JSON gateway (state.ts).
  packages: (_inv, h) => (h.roles.has('etcd') ? ['etcd-server', 'etcd-client', 'curl'] : []),
  platformProblem(_inv, platform, dcs) {
    const e = ETCD_RELEASES[platform.release.name];
    if (dcs !== 'etcd' || e.v2 === 'available') return null;
    return (
      `Patroni ${platform.patroniVersions.join(', ')} needs etcd's v2 API (its etcd3: DCS can lose acknowledged writes below 3.0.3), ` +
      `and ${platform.release.label}'s etcd ${e.etcd} deprecates it: pgha does not depend on it there; install Patroni 3.0.3 or later`
    );
  },
  upgrades: (_inv, h) => (h.roles.has('etcd') ? ['etcd-server', 'etcd-client'] : []),
  files({ inv, host, dcs, etcdState }) {
    if (!host.roles.has('etcd')) return [];
    return [etcdConfigFile(inv, host, dcs, { state: etcdState ?? 'new' })];
  },
  plan,
  async prepare(ctx) {
    const { inv } = ctx.session;
    const members = currentMembers(inv, ctx.topology.facts).map((h) => h.name);
    const conns = ctx.session.withRole('etcd').filter((c) => members.includes(c.target.name));
    if (conns.length) {
      await ctx.rollout.stage('etcd config', conns, (conn) => [configOp(renderedFile(ctx, conn.target.name, ETCD_CONFIG), restartEtcd)]);
    }
    await ctx.topology.run('etcd.prepare', ctx);
  },
  async start(ctx) {
    const { session, rollout } = ctx;
    await ctx.topology.run('etcd.start', ctx);
    await rollout.stage('etcd', session.withRole('etcd'), () => [service('etcd', { noBlock: true })]);
    if (rollout.check) return;
    await rollout.waitFor('etcd: every member healthy, one leader', () => etcdReady(session), { timeoutMs: 120_000, intervalMs: 1000 });
    // The cluster runs: every member's file names every member and says "existing", as a member
    // (re)joining must start. etcd reads those lines only on a first start: no restart.
    await rollout.stage('etcd config (cluster running)', session.withRole('etcd'), (conn) => [
      configOp(etcdConfigFile(session.inv, session.inv.host(conn.target.name), ctx.dcs, { state: 'existing' }), restartEtcd),
    ]);
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

