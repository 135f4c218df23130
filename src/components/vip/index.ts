// The leader's virtual IP (`vip:`), held by vip-manager on every database host. Debian 12's
// vip-manager 1.0.2 follows etcd's v2 API only (its etcd client is the v2 KeysAPI): it polls the
// Patroni leader key in the v2 store (`etcd:` DCS, what pgha renders for Patroni older than
// 3.0.3) with quorum reads every VIP_INTERVAL ms, takes the address when the key names its member
// and drops it when the key names another one or the read fails (each endpoint gets 1 s, so a
// host cut off from etcd's majority drops it within a few seconds, long before a new leader can
// take the lock after ttl). With the etcd3 DCS it would see no key at all: pgha refuses that
// combination before anything changes.
// Two vip-managers polling on their own would both hold the address for up to one interval when
// the key moves, so a planned switchover (the shared runbook, src/cluster/leader-change.ts) has
// the old leader release it first (withVipReleased): its vip-manager is stopped, which removes the
// address (1.0.2 removes it only on SIGINT, hence pgha's unit drop-in: KillSignal=SIGINT, and an
// ExecStopPost that deletes it whatever way the process ended), then the leader key moves, then
// the old leader's vip-manager starts again and finds the key naming another member.
// PostgreSQL listens on every address when a VIP is set (it must accept connections to the VIP).
import { daemonReload, directory, restartService, service, waitFor, type Steps } from '../../engine/index.js';
import { HostError, PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { fileOp } from '../../render/op.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import type { Session } from '../../session/session.js';
import { etcdEndpoints } from '../etcd/endpoints.js';
import { CA_BUNDLE, certFile, keyFile, tlsOn } from '../tls/paths.js';
import { currentLeader } from '../patroni/cluster.js';
import { leaderKey } from '../patroni/paths.js';
import { check, renderedFile, type Component, type RenderInput } from '../types.js';

const VIP_DEFAULT = '/etc/default/vip-manager';
const DROPIN_DIR = '/etc/systemd/system/vip-manager.service.d';
const DROPIN = `${DROPIN_DIR}/pgha.conf`;
/** vip-manager's poll of the leader key (ms): the longest a moved key goes unnoticed. */
export const VIP_INTERVAL_MS = 250;

/** The members holding the VIP now (asked with `ip` on each database host). */
export async function vipHolders(session: Session): Promise<string[]> {
  const vip = session.inv.vip!;
  const held = await Promise.all(
    session.withRole('postgres').map(async (conn) => {
      const r = await conn.run(['ip', '-o', 'addr', 'show', 'dev', vip.interface], { sudo: false, check: false, timeoutMs: 10_000 });
      return r.stdout.split('\n').some((l) => l.includes(` ${vip.address}/`)) ? conn.target.name : null;
    }),
  );
  return held.filter((h): h is string => h !== null);
}

async function vipOnLeader(session: Session): Promise<true | string> {
  const leader = (await currentLeader(session))?.name;
  if (!leader) return 'no Patroni leader';
  const holders = await vipHolders(session);
  return holders.length === 1 && holders[0] === leader ? true : `${session.inv.vip!.address} is held by ${holders.join(', ') || 'no host'}, the leader is ${leader}`;
}

function vipFiles({ inv, host }: RenderInput): RenderedFile[] {
  if (!inv.vip || !host.roles.has('postgres')) return [];
  const ctx = {
    vip: inv.vip,
    key: leaderKey(inv),
    member: host.name,
    endpoints: etcdEndpoints(inv).join(','),
    interval: VIP_INTERVAL_MS,
    // etcd asks its clients for a certificate of the cluster CA: the host's PostgreSQL one (vip-manager runs as root).
    tls: tlsOn(inv) ? { ca: CA_BUNDLE, cert: certFile('postgres'), key: keyFile('postgres') } : null,
  };
  return [renderFile('vip', VIP_DEFAULT, 'vip-manager.default.hbs', ctx), renderFile('vip', DROPIN, 'vip-manager.dropin.conf.hbs', ctx)];
}

/** What is wrong with a VIP for this DCS, or null. */
export function vipDcsProblem(inv: Inventory, dcs: string): string | null {
  if (!inv.vip || dcs === 'etcd') return null;
  return "vip: vip-manager 1.0.2 (Debian's) follows only etcd's v2 API, and this cluster's Patroni uses the etcd3 DCS (Patroni 3.0.3 or later): remove vip:";
}

/** Whether `host` holds the VIP now. */
async function holds(session: Session, host: string): Promise<boolean> {
  const vip = session.inv.vip!;
  const r = await session.conn(host).run(['ip', '-o', 'addr', 'show', 'dev', vip.interface], { sudo: false, check: false, timeoutMs: 10_000 });
  return r.stdout.split('\n').some((l) => l.includes(` ${vip.address}/`));
}

/**
 * A planned leader change with the VIP released first: `oldLeader`'s vip-manager is stopped (the
 * address goes with it; checked), `change` moves the leader key, and vip-manager starts again on
 * the old leader whatever happened (if the change failed it takes the VIP back). Then waits until
 * the VIP is on the leader only. Without `vip:` it just runs `change`.
 */
export async function withVipReleased<T>(session: Session, oldLeader: string, steps: Steps, change: () => Promise<T>): Promise<T> {
  const vip = session.inv.vip;
  if (!vip) return change();
  if (!session.conns.has(oldLeader)) throw new HostError(oldLeader, `the VIP ${vip.address} must leave this host before the leader key moves, and it is unreachable over SSH: ${session.unreachable.get(oldLeader) ?? ''}`);
  const conn = session.conn(oldLeader);
  const release = () => conn.run(['ip', 'addr', 'del', `${vip.address}/${vip.prefix}`, 'dev', vip.interface], { check: false });
  // Not running there (vip: just added, its stage still to come in this apply): nothing moves the VIP yet.
  if ((await conn.run(['systemctl', 'is-active', '--quiet', 'vip-manager'], { check: false })).code !== 0) {
    if (await holds(session, oldLeader)) await release();
    return change();
  }
  let result: T;
  try {
    await conn.run(['systemctl', 'stop', 'vip-manager'], { timeoutMs: 30_000 });
    // Belt and braces: the unit's ExecStopPost deletes it too.
    if (await holds(session, oldLeader)) await release();
    if (await holds(session, oldLeader)) throw new HostError(oldLeader, `vip-manager stopped, but ${vip.address} is still on ${vip.interface}: not switching over`);
    steps.mark(`${oldLeader} released the VIP ${vip.address}`);
    result = await change();
  } finally {
    // Queued, not awaited: a start behind a stop job that has not ended would wait for it, and
    // throwing here would hide why the change failed. The wait below sees the VIP come back.
    await conn.run(['systemctl', 'start', '--no-block', 'vip-manager'], { timeoutMs: 30_000, check: false });
  }
  await waitFor(`the VIP ${vip.address} on the leader only`, () => vipOnLeader(session), { timeoutMs: 30_000, intervalMs: 200 });
  steps.mark(`the VIP ${vip.address} is on the leader only`);
  return result;
}

export const vip: Component = {
  name: 'vip',
  packages: (inv, h) => (inv.vip && h.roles.has('postgres') ? ['vip-manager', 'iproute2'] : []),
  platformProblem: (inv, _platform, dcs) => vipDcsProblem(inv, dcs),
  files: vipFiles,
  async prepare(ctx) {
    const { session, rollout } = ctx;
    if (!session.inv.vip) return;
    const problem = vipDcsProblem(session.inv, ctx.dcs);
    if (problem) throw new PghaError(problem);
    const restart = restartService('vip-manager', { resetFailed: true });
    await rollout.stage('vip', session.withRole('postgres'), (conn) => [
      directory(DROPIN_DIR, { owner: 'root', group: 'root', mode: 0o755 }),
      fileOp(renderedFile(ctx, conn.target.name, DROPIN), [daemonReload, restart]),
      fileOp(renderedFile(ctx, conn.target.name, VIP_DEFAULT), [restart]),
      service('vip-manager', { resetFailed: true }),
    ]);
  },
  async start(ctx) {
    if (!ctx.session.inv.vip || ctx.rollout.check) return;
    await ctx.rollout.waitFor(`vip: ${ctx.session.inv.vip.address} on the leader only`, () => vipOnLeader(ctx.session), { timeoutMs: 60_000, intervalMs: 1000 });
  },
  verify: (session) =>
    session.inv.vip
      ? [
          check('vip', undefined, async () => {
            const ok = await vipOnLeader(session);
            if (ok !== true) throw new PghaError(ok);
            return `${session.inv.vip!.address} on the leader only`;
          }),
        ]
      : [],
};
