// The leader's virtual IP (`vip:`), held by vip-manager on every database host. Debian 12's
// vip-manager 1.0.2 follows etcd's v2 API only (its etcd client is the v2 KeysAPI): it polls the
// Patroni leader key in the v2 store (`etcd:` DCS, what pgha renders for Patroni older than
// 3.0.3) with quorum reads, takes the address when the key names its member and drops it when
// the key names another one or the read fails (a host cut off from etcd's majority drops it within
// ~2 s, long before a new leader can take the lock after ttl): one holder at a time, partitions
// included. With the etcd3 DCS it would see no key at all, so pgha refuses that combination.
// PostgreSQL listens on every address when a VIP is set (it must accept connections to the VIP).
import { restartService, service } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { fileOp } from '../../render/op.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import type { Session } from '../../session/session.js';
import { etcdEndpoints } from '../etcd/endpoints.js';
import { currentLeader } from '../patroni/cluster.js';
import { check, renderedFile, type Component, type RenderInput } from '../types.js';

const VIP_DEFAULT = '/etc/default/vip-manager';

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
  const ctx = { vip: inv.vip, key: `${inv.patroni.namespace}${inv.cluster.name}/leader`, member: host.name, endpoints: etcdEndpoints(inv).join(',') };
  return [renderFile('vip', VIP_DEFAULT, 'vip-manager.default.hbs', ctx)];
}

/** What is wrong with a VIP for this DCS, or null. */
export function vipDcsProblem(inv: Inventory, dcs: string): string | null {
  if (!inv.vip || dcs === 'etcd') return null;
  return "vip: vip-manager 1.0.2 (Debian's) follows only etcd's v2 API, and this cluster's Patroni uses the etcd3 DCS (Patroni 3.0.3 or later): remove vip:";
}

export const vip: Component = {
  name: 'vip',
  packages: (inv, h) => (inv.vip && h.roles.has('postgres') ? ['vip-manager', 'iproute2'] : []),
  files: vipFiles,
  async prepare(ctx) {
    const { session, rollout } = ctx;
    if (!session.inv.vip) return;
    const problem = vipDcsProblem(session.inv, ctx.dcs);
    if (problem) throw new PghaError(problem);
    await rollout.stage('vip', session.withRole('postgres'), (conn) => [fileOp(renderedFile(ctx, conn.target.name, VIP_DEFAULT), [restartService('vip-manager', { resetFailed: true })]), service('vip-manager', { resetFailed: true })]);
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
