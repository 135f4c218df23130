// Opt-in, not part of the suite: `npx tsx test/faults/etcd3-trap.ts` (root, the lab's env vars).
// Shows why pgha gives Patroni < 3.0.3 the `etcd:` (v2 API) DCS: on the lab's cluster it switches
// every member to `etcd3:` (same etcd hosts), runs scenario 1 (leader partitioned longer than ttl,
// then healed) with the fault checker, and prints what the checker found. Patroni 3.0.2 updates
// its etcd3 leader key with a plain PUT (no compare), so the healed old leader takes the lock
// back and the new leader's acknowledged writes are rewound away. Afterwards the members go back
// to `etcd:` and the cluster is verified (rebuilt from fresh machines if it will not verify).
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha } from '../helpers.js';
import { faultContext, leaderName, partitionLeader, resultsTable, runScenario, sh, sleep, waitAllStreaming, writeResults, type FaultContext } from './suite.js';

const CONFIG = '/etc/patroni/config.yml';

/** Stops Patroni everywhere, sets the DCS section's key, starts the old leader first, then the rest. */
async function switchDcs(ctx: FaultContext, to: 'etcd' | 'etcd3'): Promise<void> {
  const from = to === 'etcd3' ? 'etcd' : 'etcd3';
  const names = ctx.members.map((m) => m.name);
  const first = await leaderName(ctx, 30_000).catch(() => names[0]);
  const others = names.filter((n) => n !== first);
  for (const n of [...others, first]) await sh(n, 'sudo systemctl stop patroni', 120_000);
  for (const n of names) {
    await sh(n, `sudo sed -i 's/^${from}:$/${to}:/' ${CONFIG} && grep -qx '${to}:' ${CONFIG}`);
  }
  await sh(first, 'sudo systemctl start patroni');
  await leaderName(ctx, 180_000);
  for (const n of others) await sh(n, 'sudo systemctl start patroni');
  await waitAllStreaming(ctx, 300_000);
  console.log(`DCS is now ${to}: on every member; leader ${await leaderName(ctx)}`);
}

async function main(): Promise<void> {
  const inventory = await ensureCluster((s) => console.log(s));
  const ctx = await faultContext(inventory);
  const version = await sh(ctx.members[0].name, "dpkg-query -W -f '${Version}' patroni");
  console.log(`Patroni ${version} on the lab`);
  await switchDcs(ctx, 'etcd3');
  let code = 0;
  try {
    const { result, report } = await runScenario(ctx, '1. partition leader (etcd3 DCS, Patroni 3.0.2)', partitionLeader(ctx), { settleS: 5 });
    console.log(resultsTable([result]));
    console.log(`written to ${writeResults('etcd3-trap', [result])}`);
    if (report.lost.length) console.log(`the checker caught ${report.lost.length} lost acknowledged write(s) of ${report.acknowledged}: seq ${report.lost[0]}..${report.lost[report.lost.length - 1]}`);
    else {
      console.log('no acknowledged write was lost this time (the trap needs a new leader that acknowledged writes before the heal)');
      code = 1;
    }
  } finally {
    await switchDcs(ctx, 'etcd').catch((err) => console.log(`switching back failed: ${err}`));
    const v = await pgha(['verify', '-i', inventory]);
    if (v.code !== 0) {
      console.log('the cluster does not verify after switching back: rebuilding it');
      await lab.down();
      await ensureCluster((s) => console.log(s));
    }
    await sleep(0);
  }
  process.exit(code);
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
