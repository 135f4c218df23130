// The leader's data disk slowed down, then filled to the last block, each under the fault suite's
// writer through HAProxy: what PostgreSQL and Patroni do (they run on: no failover), that no
// acknowledged write is lost, and that `pgha status` names the problem while it lasts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureCluster, pgha } from '../helpers.js';
import * as lab from '../lab/lab.js';
import { assertNothingLost, faultContext, resultsTable, runScenario, sleep, waitAllStreaming, writeResults, type FaultContext, type ScenarioResult } from '../faults/suite.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const results: ScenarioResult[] = [];
let ctx: FaultContext;
let inventory: string;

interface StatusJson {
  verdict: string;
  reasons: string[];
  leader: string | null;
  members: { name: string; data_disk: { size_bytes: number; free_bytes: number } | null; io_wait: { wait_event: string; seconds: number } | null }[];
}
async function status(): Promise<{ code: number; json: StatusJson }> {
  const r = await pgha(['status', '-i', inventory, '--json']);
  return { code: r.code, json: JSON.parse(r.stdout) as StatusJson };
}

describe("the leader's data disk slow, then full", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    inventory = await ensureCluster(log);
    ctx = await faultContext(inventory, log);
    await waitAllStreaming(ctx, 300_000);
  });

  after(async () => {
    for (const m of ctx?.members ?? []) lab.clearDisk(m.name);
    if (!results.length) return;
    log(`\n${resultsTable(results)}`);
    log(`written to ${writeResults('disk', results)}`);
  });

  test('a slow disk (2 IOPS): commits wait, status names the wait, no failover, 0 lost', async () => {
    const seen: StatusJson[] = [];
    const { result, verifyOut } = await runScenario(ctx, 'leader disk slow (2 IOPS, 20 s)', async (r) => {
      const st = lab.slowDisk(r.leader, 2);
      assert.equal(st.iops, 2);
      r.note(`${r.leader}'s data disk at 2 IOPS`);
      const until = Date.now() + 20_000;
      await sleep(3000);
      while (Date.now() < until) {
        const s = await status();
        seen.push(s.json);
        if (s.json.reasons.some((x) => x.startsWith(`${r.leader}: data disk slow`))) assert.equal(s.code, 1, 'degraded: exit 1');
        await sleep(2000);
      }
      lab.clearDisk(r.leader);
    });
    results.push(result);
    assertNothingLost('leader disk slow', result, verifyOut);
    assert.equal(result.leaderAfter, result.leaderBefore, 'a slow disk is no reason to fail over');
    const named = seen.flatMap((s) => s.reasons).filter((x) => x.startsWith(`${result.leaderBefore}: data disk slow: a session has waited `));
    log(`status during the slow disk: ${seen.map((s) => `${s.verdict} [${s.reasons.join('; ')}]`).join(' | ')}`);
    assert.ok(named.length >= 1, `status named the slow disk in ${named.length} of ${seen.length} calls`);
    assert.match(named[0], /^node\d: data disk slow: a session has waited \d+(\.\d)? s on it \((WAL|DataFile)\w+\)$/);
    const after = await status();
    assert.equal(after.json.verdict, 'healthy', after.json.reasons.join('; '));
  });

  test('a full disk: writes refused (not lost) while it lasts, status DOWN naming it, writes back once space is freed', async () => {
    let during: { code: number; json: StatusJson } | undefined;
    let leader = '';
    const { result, report, verifyOut } = await runScenario(ctx, 'leader disk full (25 s)', async (r) => {
      leader = r.leader;
      const st = lab.fillDisk(r.leader);
      assert.ok(st.free < 64 * 2 ** 20, `${st.free} bytes left free`);
      r.note(`${r.leader}'s data disk filled (${st.free} bytes free)`);
      await sleep(10_000);
      during = await status();
      await sleep(15_000);
      lab.clearDisk(r.leader);
    });
    results.push(result);
    assertNothingLost('leader disk full', result, verifyOut);
    assert.equal(result.leaderAfter, result.leaderBefore, 'PostgreSQL runs on with a full disk: Patroni keeps its leader');
    assert.ok(report.errors.some((e) => /No space left on device/.test(e)), `the writer saw the refusals: ${report.errors.join(' | ')}`);
    assert.ok(during, 'status was asked during the fault');
    assert.equal(during.code, 2, 'down: exit 2');
    assert.equal(during.json.verdict, 'down');
    assert.match(during.json.reasons[0], new RegExp(`^${leader}: data disk full \\(\\d+ MiB free of [\\d.]+ GiB\\): PostgreSQL refuses every write that needs space; free space or grow the disk$`));
    const m = during.json.members.find((x) => x.name === leader)!;
    assert.ok(m.data_disk && m.data_disk.free_bytes < 64 * 2 ** 20, JSON.stringify(m.data_disk));
    const after = await status();
    assert.equal(after.json.verdict, 'healthy', after.json.reasons.join('; '));
  });
});
