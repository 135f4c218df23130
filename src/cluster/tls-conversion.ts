// Moving a running cluster from clear text to TLS (a cluster an earlier pgha deployed, or one
// deployed with `tls: false`), under load, without a write lost: run by `pgha apply` after the
// certificates are on the hosts and before the components write their final files. Each step is
// found from the hosts' config files, so an interrupted run is finished by the next one.
//
//   1. etcd, one member at a time: every member first holds its certificate and the CA for its
//      peer connections (still clear text: it can then dial a peer that listens over TLS); then
//      one member at a time its peer URL becomes https in the membership (`member update`)
//      and it restarts speaking TLS to its peers, its client port answering TLS and clear text
//      (the Patroni members not switched yet keep working).
//   2. PostgreSQL serves TLS (Patroni reloads with ssl on; nothing restarts).
//   3. The cluster is paused (no failover while Patroni restarts), Patroni restarted with its
//      final config on every member, the leader last: REST API over https, etcd over TLS with its
//      client certificate, replication and pg_rewind with sslmode=verify-full, hostssl rules.
//      PostgreSQL keeps running. HAProxy then checks over TLS (reloaded right after the leader:
//      the one write pause of the conversion, a few seconds, while the leader's REST API restarts).
//   4. etcd, one member at a time: TLS only (the clear-text client port closed), then the cluster
//      is resumed.
// Nothing here can be done without a restart of etcd members and of Patroni (not PostgreSQL):
// each is one at a time, behind a health gate.
import { InputError, PghaError } from '../errors.js';
import type { Host } from '../inventory/index.js';
import { fileOp } from '../render/op.js';
import { HEADER } from '../render/template.js';
import type { Connection } from '../ssh/index.js';
import type { ApplyContext } from '../components/types.js';
import { renderedFile } from '../components/types.js';
import { ETCD_CONFIG, etcdConfigFile } from '../components/etcd/index.js';
import { etcdHealthy, etcdHealthyEach, memberListAt, updatePeerUrlAt } from '../components/etcd/actions.js';
import { etcdClientUrl, etcdPeerUrl } from '../components/etcd/endpoints.js';
import { HAPROXY_CONFIG } from '../components/haproxy/index.js';
import { haproxyServers, primaryRouteProblem } from '../components/haproxy/state.js';
import { patroniConfigFile } from '../components/patroni/files.js';
import { PATRONI_CONFIG } from '../components/patroni/paths.js';
import { patchDynamicConfig } from '../components/patroni/config.js';
import { patroniCluster, patroniSelf, leaderOf, isRunningState } from '../components/patroni/cluster.js';
import { sqlLocal } from '../session/remote.js';
import { tlsOn, withTls } from '../components/tls/paths.js';

/** How a config file on a host speaks, read from its text. */
type EtcdState = 'plain' | 'trust' | 'transition' | 'tls';
type PatroniState = 'plain' | 'ssl-only' | 'tls';

export function etcdConfigState(text: string): EtcdState {
  if (!/^ETCD_PEER_CERT_FILE=/m.test(text)) return 'plain';
  if (/^ETCD_LISTEN_PEER_URLS="http:\/\//m.test(text)) return 'trust';
  return /^ETCD_LISTEN_CLIENT_URLS="[^"]*http:\/\//m.test(text) ? 'transition' : 'tls';
}

export function patroniConfigState(text: string): PatroniState {
  const restTls = /^restapi:\n(?: .*\n|\n)*? {2}certfile:/m.test(text);
  if (restTls) return 'tls';
  return /^\s+ssl_cert_file:/m.test(text) ? 'ssl-only' : 'plain';
}

/** A marker on the database hosts: the cluster was paused by this conversion, and the next apply resumes it. */
const PAUSE_MARKER = '/var/lib/pgha/tls-conversion-paused';

interface Member {
  host: Host;
  conn: Connection;
  running: boolean;
  text: string | null;
  /** Asked only when wanted: the conversion's pause marker is there. */
  paused?: boolean;
}

/**
 * The role's hosts, each with whether its service runs and its config file: only a file pgha
 * wrote counts (on a fresh host Debian's etcd runs with Debian's own file, a single-member
 * etcd that is not the cluster's: nothing to move).
 */
async function members(ctx: ApplyContext, role: 'etcd' | 'postgres', service: string, path: string, marker = false): Promise<Member[]> {
  return Promise.all(
    ctx.session.withRole(role).map(async (conn) => {
      // Asked at once: every apply asks them (twice) before its certificates are taken up.
      const [text, active, paused] = await Promise.all([
        conn.readFile(path),
        conn.run(['systemctl', 'is-active', '--quiet', service], { check: false }),
        marker ? conn.run(['test', '-e', PAUSE_MARKER], { sudo: false, check: false }) : undefined,
      ]);
      return {
        host: ctx.session.inv.host(conn.target.name),
        conn,
        running: active.code === 0,
        text: text !== null && text.includes(HEADER) ? text : null,
        ...(paused ? { paused: paused.code === 0 } : {}),
      };
    }),
  );
}

/** etcd's and Patroni's members, asked at once (`marker`: whether each Patroni host has the pause marker too). */
const bothMembers = (ctx: ApplyContext, marker = false) => Promise.all([members(ctx, 'etcd', 'etcd', ETCD_CONFIG), members(ctx, 'postgres', 'patroni', PATRONI_CONFIG, marker)]);

/**
 * `tls: false` on a cluster that runs with TLS: refused, nothing changed. Taking a cluster back
 * to clear text is not something apply does on the side.
 */
export async function refuseTlsOff(ctx: ApplyContext): Promise<void> {
  const [etcd, patroni] = await bothMembers(ctx);
  const running = [
    ...etcd.filter((m) => m.running && m.text && etcdConfigState(m.text) !== 'plain').map((m) => `etcd on ${m.host.name}`),
    ...patroni.filter((m) => m.running && m.text && patroniConfigState(m.text) === 'tls').map((m) => `Patroni on ${m.host.name}`),
  ];
  if (running.length) {
    throw new InputError(
      `the inventory says tls: false, but the cluster runs with TLS (${running.join(', ')}): pgha apply does not take a running cluster back to clear text. ` +
        'Remove tls: false (TLS is the default); nothing was changed',
    );
  }
}

/**
 * Whether a running etcd member or Patroni still speaks clear text (some or all of the move to
 * TLS is still to come): then the move restarts and reloads them itself, with the new
 * certificates, and nothing may ask them over TLS before.
 */
export async function runningInClearText(ctx: ApplyContext): Promise<boolean> {
  const [etcd, patroni] = await bothMembers(ctx);
  return etcd.some((m) => m.running && m.text !== null && etcdConfigState(m.text) !== 'tls') || patroni.some((m) => m.running && m.text !== null && patroniConfigState(m.text) !== 'tls');
}

/** Moves a running clear-text cluster to TLS (see the top of this file); nothing to do for one that is not running or already there. */
export async function convertToTls(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const inv = session.inv;
  if (!tlsOn(inv)) return;
  const say = (s: string) => rollout.reporter.progress('tls', s);
  const [etcd, patroni] = (await bothMembers(ctx, true)).map((ms) => ms.filter((m) => m.running && m.text !== null));
  const paused = patroni.some((m) => m.paused);
  const etcdState = (m: Member) => etcdConfigState(m.text!);
  const patroniState = (m: Member) => patroniConfigState(m.text!);
  const etcdTodo = etcd.filter((m) => etcdState(m) !== 'tls');
  const patroniTodo = patroni.filter((m) => patroniState(m) !== 'tls');
  if (!etcdTodo.length && !patroniTodo.length && !paused) return;

  const plan = [
    etcd.some((m) => etcdState(m) === 'plain' || etcdState(m) === 'trust') &&
      `etcd peers to TLS, one member at a time, twice: the CA trusted, then TLS (${etcd.filter((m) => etcdState(m) === 'plain' || etcdState(m) === 'trust').map((m) => m.host.name).join(', ')})`,
    patroni.some((m) => patroniState(m) === 'plain') && 'PostgreSQL serves TLS (Patroni reloads; nothing restarts)',
    patroniTodo.length && 'the cluster paused; Patroni restarted with TLS on every member, the leader last (PostgreSQL keeps running; HAProxy\'s checks of the leader may fail while its REST API restarts, about 1-2 s); HAProxy checks over TLS',
    etcdTodo.length && 'etcd clients over TLS only, one member at a time',
    (patroniTodo.length || paused) && 'the cluster resumed',
  ].filter((s): s is string => !!s);
  say(`${rollout.check ? 'would move' : 'moving'} the running cluster to TLS: ${plan.map((s, i) => `${i + 1}. ${s}`).join('; ')}`);
  if (rollout.check) return;
  const t0 = Date.now();

  // Each etcd member asked the way it speaks now (its client port answers TLS from `transition` on).
  const endpointOf = (m: Member) => etcdClientUrl(withTls(inv, etcdState(m) === 'transition' || etcdState(m) === 'tls'), m.host);
  const etcdOk = (from: Member) => etcdHealthyEach(inv, from.conn, new Map(etcd.map((m) => [m.host.name, endpointOf(m)])));

  // ---- 1. etcd peers over TLS, member by member: first every member trusts the CA.
  for (const m of etcd.filter((x) => etcdState(x) === 'plain')) {
    const trust = etcdConfigFile(inv, m.host, ctx.dcs, { transport: 'trust', state: 'existing' });
    await rollout.stage(`tls: etcd peers trust the cluster CA (${m.host.name})`, [m.conn], () => [fileOp(trust)]);
    await m.conn.run(['systemctl', 'restart', 'etcd'], { timeoutMs: 120_000 });
    m.text = trust.content;
    await rollout.waitFor(`etcd healthy after restarting ${m.host.name}`, () => etcdOk(m), { timeoutMs: 120_000, intervalMs: 1000 });
  }
  for (const m of etcd.filter((x) => etcdState(x) === 'trust' || etcdState(x) === 'transition')) {
    const transition = etcdConfigFile(inv, m.host, ctx.dcs, { transport: 'transition', state: 'existing' });
    const list = await memberListAt(inv, m.conn, endpointOf(m));
    const me = list.find((x) => x.name === m.host.name);
    if (!me) throw new PghaError(`${m.host.name} is not a member of the etcd cluster (${list.map((x) => x.name).join(', ')})`);
    const peerUrl = etcdPeerUrl(inv, m.host);
    const changed = m.text !== transition.content;
    if (!changed && me.peerURLs.includes(peerUrl)) continue;
    await rollout.stage(`tls: etcd peers over TLS (${m.host.name})`, [m.conn], () => [fileOp(transition)]);
    if (!me.peerURLs.includes(peerUrl)) await updatePeerUrlAt(inv, m.conn, endpointOf(m), me, peerUrl);
    await m.conn.run(['systemctl', 'restart', 'etcd'], { timeoutMs: 120_000 });
    m.text = transition.content;
    await rollout.waitFor(`etcd healthy with ${m.host.name}'s peers over TLS`, () => etcdOk(m), { timeoutMs: 120_000, intervalMs: 1000 });
  }

  // ---- 2. PostgreSQL serves TLS.
  for (const m of patroni.filter((x) => patroniState(x) === 'plain')) {
    const sslOnly = patroniConfigFile(inv, m.host, ctx.dcs, ctx.platform, 'ssl-only');
    await rollout.stage(`tls: PostgreSQL serves TLS (${m.host.name})`, [m.conn], () => [fileOp(sslOnly)]);
    await m.conn.run(['systemctl', 'reload', 'patroni']);
    m.text = sslOnly.content;
    await rollout.waitFor(`PostgreSQL on ${m.host.name} serving TLS`, async () => ((await sqlLocal(inv, m.conn, 'show ssl', { check: false })).stdout.trim() === 'on' ? true : 'ssl is off'), {
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
  }

  // ---- 3. Patroni with TLS, in a pause.
  const restOf = (m: Member) => withTls(inv, patroniState(m) === 'tls');
  const anyRest = async () => {
    for (const m of patroni) {
      try {
        return { m, cluster: await patroniCluster(restOf(m), m.conn, m.host) };
      } catch {
        // the next one
      }
    }
    throw new PghaError('no Patroni REST API answers');
  };
  if (patroniTodo.length) {
    const { m: via, cluster } = await anyRest();
    if (!cluster.pause) {
      await Promise.all(patroni.map((m) => m.conn.run(['sh', '-c', 'mkdir -p "$(dirname "$1")" && touch "$1"', 'sh', PAUSE_MARKER])));
      await patchDynamicConfig(restOf(via), via.conn, via.host, { pause: true });
      say('cluster paused: no failover until it is resumed at the end of this step');
    }
    await rollout.waitFor(
      'every Patroni member paused',
      async () => {
        const selves = await Promise.all(patroni.map((m) => patroniSelf(restOf(m), m.conn, m.host).catch(() => null)));
        const not = patroni.filter((_, i) => selves[i]?.pause !== true).map((m) => m.host.name);
        return not.length ? `not paused yet: ${not.join(', ')}` : true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const leader = leaderOf((await anyRest()).cluster)?.name;
    const ordered = [...patroniTodo.filter((m) => m.host.name !== leader), ...patroniTodo.filter((m) => m.host.name === leader)];
    for (const m of ordered) {
      const isLeader = m.host.name === leader;
      await rollout.stage(`tls: Patroni with TLS (${m.host.name}${isLeader ? ', the leader' : ''})`, [m.conn], () => [fileOp(renderedFile(ctx, m.host, PATRONI_CONFIG))]);
      const restarted = Date.now();
      await m.conn.run(['systemctl', 'restart', 'patroni'], { timeoutMs: 300_000 });
      m.text = renderedFile(ctx, m.host, PATRONI_CONFIG).content;
      if (isLeader) await haproxyOverTls(ctx);
      await rollout.waitFor(
        `Patroni on ${m.host.name} answering over TLS`,
        async () => {
          const self = await patroniSelf(inv, m.conn, m.host);
          return isRunningState(self.state) ? true : `state ${self.state}`;
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      if (isLeader) {
        await rollout.waitFor('HAProxy routing the primary port to the leader again', () => routesTo(ctx, m.host.name), { timeoutMs: 120_000, intervalMs: 250 });
        say(`the leader ${m.host.name}'s REST API was away for ${((Date.now() - restarted) / 1000).toFixed(1)}s`);
      }
    }
    if (!ordered.some((m) => m.host.name === leader)) await haproxyOverTls(ctx);
  }

  // ---- 4. etcd: TLS only, member by member; then resume.
  for (const m of etcd.filter((x) => etcdState(x) === 'transition')) {
    const final = renderedFile(ctx, m.host, ETCD_CONFIG);
    await rollout.stage(`tls: etcd clients over TLS only (${m.host.name})`, [m.conn], () => [fileOp(final)]);
    await m.conn.run(['systemctl', 'restart', 'etcd'], { timeoutMs: 120_000 });
    m.text = final.content;
    await rollout.waitFor(`etcd healthy over TLS after restarting ${m.host.name}`, () => etcdHealthy(inv, m.conn), { timeoutMs: 120_000, intervalMs: 1000 });
  }
  const markers = await Promise.all(patroni.map((m) => m.conn.run(['test', '-e', PAUSE_MARKER], { sudo: false, check: false })));
  if (markers.some((r) => r.code === 0)) {
    // Every member must have reached etcd over TLS before failover is allowed again.
    await rollout.waitFor(
      'every Patroni member reaching etcd over TLS',
      async () => {
        const c = await patroniCluster(inv, patroni[0].conn, patroni[0].host);
        const missing = patroni.filter((m) => !c.members.some((x) => x.name === m.host.name)).map((m) => m.host.name);
        return missing.length ? `not in the cluster view yet: ${missing.join(', ')}` : true;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const { m: via } = await anyRest();
    await patchDynamicConfig(restOf(via), via.conn, via.host, { pause: false });
    await Promise.all(patroni.map((m) => m.conn.run(['rm', '-f', PAUSE_MARKER])));
    say('cluster resumed');
  }
  say(`the cluster speaks TLS on every link (moved in ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
}

/** HAProxy's final config (checks over TLS) on every HAProxy host, reloaded at once. */
async function haproxyOverTls(ctx: ApplyContext): Promise<void> {
  const hosts = ctx.session.withRole('haproxy');
  await ctx.rollout.stage('tls: HAProxy checks over TLS', hosts, (conn) => [fileOp(renderedFile(ctx, conn.target.name, HAPROXY_CONFIG))]);
  await Promise.all(
    hosts.map(async (c) => {
      if ((await c.run(['systemctl', 'is-active', '--quiet', 'haproxy'], { check: false })).code === 0) await c.run(['systemctl', 'reload', 'haproxy']);
    }),
  );
}

async function routesTo(ctx: ApplyContext, leader: string): Promise<true | string> {
  for (const c of ctx.session.withRole('haproxy')) {
    const problem = primaryRouteProblem(await haproxyServers(ctx.session.inv, c), leader);
    if (problem) return `${c.target.name}: ${problem}`;
  }
  return true;
}

