// Opt-in, not part of the suite: `npx tsx test/faults/etcd3-trap.ts` (root, the lab's env vars;
// `--restore` only switches the members back to `etcd:` and verifies).
// Shows why pgha gives Patroni < 3.0.3 the `etcd:` (v2 API) DCS: on the lab's cluster it switches
// every member to `etcd3:` (same etcd hosts), runs scenario 1 (leader partitioned longer than ttl,
// then healed) with the fault checker, and reports what it found on every member. Patroni 3.0.2
// updates its etcd3 leader key with a plain PUT (no compare), so the healed old leader takes the
// lock back over the new leader, whose acknowledged writes are then missing from the lock holder.
// Afterwards the members go back to `etcd:` (most advanced member first) and the cluster is
// verified, or rebuilt from fresh machines if it will not verify.
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha } from '../helpers.js';
import { Checker, compareRows, rowsOf } from './checker.js';
import { allStreaming, clusterView, faultContext, leaderName, partitionLeader, sh, sleep, waitAllStreaming, writeResults, type FaultContext } from './suite.js';

const CONFIG = '/etc/patroni/config.yml';

/** Stops Patroni everywhere, sets the DCS section's key, starts the most advanced member first, then the rest. */
async function switchDcs(ctx: FaultContext, to: 'etcd' | 'etcd3'): Promise<void> {
  const names = ctx.members.map((m) => m.name);
  const view = await clusterView(ctx);
  const leader = view?.find((m) => m.role === 'leader' && (m.state === 'running' || m.state === 'streaming'))?.name;
  // Without a running leader: the member on the highest timeline holds the newest writes.
  const byTimeline = (view ?? []).filter((m) => typeof m.timeline === 'number').sort((a, b) => b.timeline! - a.timeline!);
  const first = leader ?? byTimeline[0]?.name ?? names[0];
  const others = names.filter((n) => n !== first);
  for (const n of [...others, first]) await sh(n, 'sudo systemctl stop patroni', 120_000);
  for (const n of names) await sh(n, `sudo sed -i -E 's/^etcd3?:$/${to}:/' ${CONFIG} && sudo grep -qx '${to}:' ${CONFIG}`);
  await sh(first, 'sudo systemctl start patroni');
  await leaderName(ctx, 180_000);
  for (const n of others) await sh(n, 'sudo systemctl start patroni');
  await waitAllStreaming(ctx, 300_000);
  console.log(`DCS is now ${to}: on every member; leader ${await leaderName(ctx)}`);
}

async function restore(inventory: string, ctx: FaultContext): Promise<void> {
  await switchDcs(ctx, 'etcd').catch((err) => console.log(`switching back failed: ${err}`));
  const v = await pgha(['verify', '-i', inventory]);
  if (v.code !== 0) {
    console.log('the cluster does not verify after switching back: rebuilding it from fresh machines');
    await lab.down();
    await ensureCluster((s) => console.log(s));
  }
  console.log('cluster verified (etcd v2 DCS)');
}

async function main(): Promise<number> {
  const inventory = lab.labInventoryPath();
  const ctx = await faultContext(inventory);
  if (process.argv.includes('--restore')) {
    await restore(inventory, ctx);
    return 0;
  }
  await ensureCluster((s) => console.log(s));
  const version = await sh(ctx.members[0].name, "dpkg-query -W -f '${Version}' patroni");
  console.log(`Patroni ${version} on the lab`);
  let lostSomewhere = false;
  try {
    await switchDcs(ctx, 'etcd3');
    const leader = await leaderName(ctx);
    const haproxy = [...ctx.haproxy.filter((h) => h.name !== leader), ...ctx.haproxy.filter((h) => h.name === leader)];
    const checker = await Checker.start({ writeEndpoints: haproxy, members: ctx.members, cred: ctx.cred });
    await checker.waitForAcks(0, 50, 60_000);
    const t0 = Date.now();
    const notes: string[] = [];
    console.log(`partitioning the leader ${leader}`);
    await partitionLeader(ctx)({ leader, checker, t0, note: (s) => notes.push(s) });
    const healed = Date.now();
    console.log(`healed ${Math.round((healed - t0) / 1000)} s after the cut (${notes.join('; ')}); watching for 90 s`);
    let state: true | string = 'not asked';
    for (let i = 0; i < 90 && state !== true; i++) {
      state = await allStreaming(ctx);
      if (state !== true) await sleep(1000);
    }
    await checker.stop();
    const view = await clusterView(ctx);
    console.log(`cluster 90 s after the heal: ${state === true ? 'every member streams' : state}; ${view?.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ')}`);
    const acks = checker.writer.acks;
    const afterCut = acks.filter((a) => a.at > t0).length;
    console.log(`writes acknowledged: ${acks.length} (${afterCut} after the cut, i.e. by the new leader); double-primary moments: ${checker.probe.doublePrimaryMoments().length}`);
    const perMember: Record<string, unknown>[] = [];
    for (const m of ctx.members) {
      const role = view?.find((x) => x.name === m.name);
      try {
        const { lost, duplicated } = compareRows(acks, await rowsOf(m, ctx.cred, checker.writer.run));
        if (lost.length && role?.role === 'leader') lostSomewhere = true;
        console.log(`  ${m.name} (${role?.role ?? '?'}, ${role?.state ?? '?'}): ${lost.length} acknowledged write(s) missing, ${duplicated.length} duplicated`);
        perMember.push({ member: m.name, role: role?.role, state: role?.state, missing: lost.length });
      } catch (err) {
        console.log(`  ${m.name} (${role?.role ?? '?'}, ${role?.state ?? '?'}): not readable (${err instanceof Error ? err.message : String(err)}): its acknowledged writes are unavailable`);
        perMember.push({ member: m.name, role: role?.role, state: role?.state, readable: false });
        if (role?.role === 'leader') lostSomewhere = true;
      }
    }
    writeResults('etcd3-trap', [
      {
        scenario: '1. partition leader (etcd3 DCS, Patroni 3.0.2)',
        profile: ctx.inv.timing.profile,
        unavailabilityS: Math.round((Date.now() - (acks.at(-1)?.at ?? t0)) / 100) / 10,
        acknowledged: acks.length,
        lost: -1,
        duplicated: 0,
        doublePrimary: checker.probe.doublePrimaryMoments().length,
        readOnlyErrors: checker.writer.readOnly.length,
        streamAgainS: state === true ? Math.round((Date.now() - t0) / 1000) : null,
        verified: false,
        leaderBefore: leader,
        leaderAfter: view?.find((m) => m.role === 'leader')?.name ?? '-',
        notes: `${notes.join('; ')}; per member: ${JSON.stringify(perMember)}`,
        problems: [],
      },
    ]);
  } finally {
    await restore(inventory, ctx);
  }
  return lostSomewhere ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
