// Degraded networks on the lab's cluster with the default timing profile (balanced): latency with
// jitter and 5% loss on the leader's link, a 5 s and a 15 s stall of it, a slow etcd member
// (test/faults/degraded.ts). Each condition runs with a writer through HAProxy judged by the
// lost-write checker and the cluster verified after; leader changes are counted and classified
// (unnecessary: the old leader was reachable), and the client error rate through HAProxy is
// measured. Short windows (PGHA_DEGRADED_HOLD_S, default 20 s per condition); the comparison of
// the profiles over longer windows is `npm run bench -- --only degraded`. Results in
// test-output/degraded.md and .json.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCluster, REPO } from '../helpers.js';
import { assertNothingLost, faultContext, waitAllStreaming, type FaultContext } from '../faults/suite.js';
import { CONDITIONS, degradedTable, runCondition, type DegradedResult } from '../faults/degraded.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const HOLD_S = Number(process.env.PGHA_DEGRADED_HOLD_S ?? 20);
const results: DegradedResult[] = [];
let ctx: FaultContext;

const condition = (name: string) => {
  const c = CONDITIONS.find((x) => x.name.startsWith(name));
  if (!c) throw new Error(`no condition ${name}`);
  return c;
};

async function held(name: string): Promise<DegradedResult> {
  const { result, degraded, verifyOut } = await runCondition(ctx, condition(name), HOLD_S);
  results.push(degraded);
  assertNothingLost(degraded.condition, result, verifyOut);
  assert.deepEqual(result.problems.filter((p) => /timeline fork/.test(p)), [], `${degraded.condition}: the archive must only hold WAL of the cluster's history`);
  assert.ok(degraded.attempts > 0, 'the writer attempted writes');
  return degraded;
}

describe('degraded networks, default profile', { timeout: 30 * 60_000 }, () => {
  before(async () => {
    ctx = await faultContext(await ensureCluster(log), log);
    await waitAllStreaming(ctx, 300_000);
  });

  after(() => {
    if (!results.length) return;
    log(`\n${degradedTable(results)}`);
    const dir = join(REPO, 'test-output');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'degraded.md'), `# degraded networks (hold ${HOLD_S} s per condition)\n\n${degradedTable(results)}\n`);
    writeFileSync(join(dir, 'degraded.json'), `${JSON.stringify(results, null, 2)}\n`);
  });

  test('latency 200 ms +- 100 ms on the leader: nothing lost, no failover', async () => {
    const d = await held('latency');
    assert.equal(d.profile, 'balanced');
    assert.deepEqual(d.changes, [], 'a delayed but answering leader keeps its role');
  });

  test('5% loss on the leader: nothing lost, no failover', async () => {
    const d = await held('5% loss');
    assert.deepEqual(d.changes, [], 'a lossy but answering leader keeps its role');
  });

  test('5 s stall of the leader\'s link: nothing lost, no failover (shorter than ttl)', async () => {
    const d = await held('5 s stall');
    assert.deepEqual(d.changes, [], `a ${ctx.ttl} s ttl outlasts a 5 s stall`);
  });

  test('15 s stall of the leader\'s link: exactly one new leader, nothing lost', async () => {
    const d = await held('15 s stall');
    assert.equal(d.changes.length, 1, JSON.stringify(d.changes));
    assert.equal(d.changes[0].necessary, ctx.ttl / 2 <= 15, JSON.stringify(d.changes));
  });

  test('a slow etcd member: nothing lost, no failover', async () => {
    const d = await held('slow etcd');
    assert.deepEqual(d.changes, [], 'a slow etcd follower moves no leader');
  });
});
