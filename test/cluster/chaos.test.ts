// A short seeded chaos soak on the lab's cluster (test/chaos/soak.ts): the fault suite's faults in
// the order the seed gives, under a writer through HAProxy's primary port and a reader on its
// replicas port. 0 acknowledged writes lost, 0 duplicates, never two primaries, verified after,
// and the faults injected are the seed's sequence, each doing what it is meant to (a leader fault
// moves the leader, a replica fault does not, a switchover lands on its target). Reuses the
// verified cluster the test before it leaves behind (no apply when it verifies), with the lab
// inventory's timing profile (balanced, the default): this is where the default profile meets
// every fault of the suite in npm test. PGHA_CHAOS_MINUTES sets the soak's length (default 5, in
// which seed 175 injects every kind once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCluster, REPO } from '../helpers.js';
import { FAULT_KINDS, planFaults } from '../chaos/plan.js';
import { loadInventory } from '../../src/inventory/index.js';
import { chaosMarkdown, runChaos } from '../chaos/soak.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const MINUTES = Number(process.env.PGHA_CHAOS_MINUTES ?? 5);
// Seed 175's first seven faults are the seven kinds, each once. Short pauses (the soak waits for
// a healthy cluster before each one anyway): the seventh starts about 3.5 min in on the lab,
// leaving room for a slower machine within the 5 minutes.
const SEED = 175;
const PAUSE = { minS: 2, maxS: 6 };

test(`a ${MINUTES}-minute chaos soak, seed ${SEED}: nothing lost, never two primaries, verified after`, { timeout: (MINUTES + 30) * 60_000 }, async () => {
  const inventory = await ensureCluster(log);
  const inv = await loadInventory(inventory);
  const r = await runChaos({ inventory, minutes: MINUTES, seed: SEED, pause: PAUSE, log });
  const md = chaosMarkdown(r);
  log(md);
  mkdirSync(join(REPO, 'test-output'), { recursive: true });
  writeFileSync(join(REPO, 'test-output', 'chaos.md'), `# chaos soak (CI)\n\n${md}\n`);

  assert.deepEqual(r.faults.filter((f) => f.error).map((f) => `#${f.n} ${f.kind}: ${f.error}`), []);
  assert.equal(r.lost, 0, r.problems.join('; '));
  assert.equal(r.duplicated, 0, r.problems.join('; '));
  assert.equal(r.doublePrimary, 0, r.problems.join('; '));
  assert.deepEqual(r.diverged, []);
  assert.ok(r.verified, r.verifyOut);
  assert.ok(r.acknowledged > 1000, `${r.acknowledged} writes acknowledged`);
  assert.ok(r.reads > 1000, `${r.reads} reads on the replicas port`);
  assert.ok(r.passed, r.problems.join('; '));

  // The faults injected are the seed's sequence, and the soak went on until its minutes were up.
  assert.ok(r.faults.length >= 2, `${r.faults.length} faults in ${MINUTES} min`);
  // Five minutes of seed 175 meet every kind of the suite (the default profile's fault coverage).
  if (MINUTES >= 5) assert.deepEqual([...new Set(r.faults.map((f) => f.kind))].sort(), [...FAULT_KINDS].sort());
  assert.deepEqual(
    r.faults.map((f) => ({ kind: f.kind, target: f.target, pauseS: f.pauseS })),
    planFaults(SEED, r.faults.length, PAUSE),
  );
  const last = r.faults.at(-1)!;
  assert.ok(last.atS < MINUTES * 60, 'no fault starts after the soak time');
  assert.ok(r.durationS >= MINUTES * 60, `faults go on until the soak time is up (${r.durationS} s)`);

  // Each fault did what it is meant to on the cluster.
  for (const f of r.faults) {
    const what = `#${f.n} ${f.kind} (${f.leaderBefore} -> ${f.leaderAfter})`;
    assert.ok(f.healthyS !== null, `${what}: healthy again`);
    if (f.kind === 'partition leader' || f.kind === 'power off leader') {
      assert.ok(f.failoverS !== null && f.leaderAfter !== f.leaderBefore, `${what}: another member leads`);
    }
    if (f.kind === 'switchover') assert.equal(f.leaderAfter, f.targetName, `${what}: the target leads`);
    // With failsafe_mode (pgha's default) and every Patroni member reachable, the primary keeps serving.
    if (f.kind === 'etcd quorum loss' && inv.patroni.failsafe_mode) assert.match(f.notes.join('; '), /kept serving/, `${what}: ${f.notes.join('; ')}`);
    if (f.kind === 'partition replica') {
      assert.notEqual(f.targetName, f.leaderBefore, `${what}: a replica was cut off`);
      assert.equal(f.failoverS, null, `${what}: the leader stays`);
    }
  }
});
