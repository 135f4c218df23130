// Clients of HAProxy's primary port are never sent to a read-only server: a `pgha switchover`
// (old leader drained in every HAProxy first) and a failover after the leader loses power (the
// primary backend's check marks a member up only once it is a writable primary holding the
// leader lock), each under the fault suite's writer: 0 writes refused as read-only, 0 lost.
// A switchover asked of Patroni directly (no drain) is a comparison: `npm run bench -- --only switchover`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureCluster } from '../helpers.js';
import { assertNothingLost, faultContext, pghaSwitchover, sh, poweroffLeader, resultsTable, runScenario, waitAllStreaming, writeResults, type FaultContext, type FaultRun, type ScenarioResult } from '../faults/suite.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const results: ScenarioResult[] = [];
let ctx: FaultContext;

async function scenario(name: string, fault: (r: FaultRun) => Promise<void>, opts: { readOnlyFree: boolean }): Promise<ScenarioResult> {
  const { result, verifyOut } = await runScenario(ctx, name, fault);
  results.push(result);
  assertNothingLost(name, result, verifyOut);
  assert.notEqual(result.leaderAfter, result.leaderBefore, `${name}: the leader did not change`);
  if (opts.readOnlyFree) assert.equal(result.readOnlyErrors, 0, `${name}: writes refused as read-only through the primary port`);
  return result;
}

describe('the primary port never sends a client to a read-only server', { timeout: 30 * 60_000 }, () => {
  before(async () => {
    ctx = await faultContext(await ensureCluster(log), log);
    await waitAllStreaming(ctx, 300_000);
  });

  after(() => {
    if (!results.length) return;
    log(`\n${resultsTable(results)}`);
    log(`written to ${writeResults('primary-port', results)}`);
  });

  test('pgha switchover under write load: 0 read-only errors, 0 lost', async () => {
    const r = await scenario('pgha switchover', pghaSwitchover(ctx), { readOnlyFree: true });
    assert.match(r.notes, /pgha switchover to \S+: done in [\d.]+ s/);
    assert.doesNotMatch(r.notes, /not drained/, r.notes);
  });

  test('failover after the leader loses power: 0 read-only errors, 0 lost', async () => {
    await scenario('power off leader (failover)', poweroffLeader(ctx), { readOnlyFree: true });
  });

  test("HAProxy's checks read Patroni's whole answer: no request of theirs ends in a reset (a traceback in Patroni's log)", async () => {
    // A quiet window after the changes above (a switchover or a member coming back may cut one
    // request legitimately): with the status matched first, every replica check ended in a reset,
    // about 100 a minute.
    await new Promise((r) => setTimeout(r, 20_000));
    for (const m of ctx.members) {
      const n = await sh(m.name, "sudo journalctl -u patroni --since '20 seconds ago' --no-pager | grep -c 'Exception happened during processing of request' || true");
      assert.equal(n, '0', `${m.name}: Patroni logged ${n} failed REST requests in the last 20 s`);
    }
  });
});
