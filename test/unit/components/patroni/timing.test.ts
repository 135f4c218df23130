// Patroni's timing as it runs: Patroni 3.2 and later raise a ttl below 20 s (and keep loop_wait +
// 2 * retry_timeout <= ttl), so the profiles balanced and fast run with ttl 20 on Debian 13's
// Patroni 4.0.7; what apply, render and status say about it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveTiming, failoverExpectation, raisedTimingNote, timingSummary } from '../../../../src/components/patroni/timing.js';
import { TIMING_PROFILES, type Timing, type TimingProfile } from '../../../../src/inventory/index.js';

const profile = (p: TimingProfile): Timing => {
  const { ttl, loop_wait, retry_timeout, haproxy } = TIMING_PROFILES[p];
  return { profile: p, patroni: { ttl, loop_wait, retry_timeout }, overridden: false, haproxy: { ...haproxy } };
};

test("Patroni 3.0.2 (Debian 12) runs every profile's numbers as they are", () => {
  for (const p of ['safe', 'balanced', 'fast'] as const) assert.deepEqual(effectiveTiming(profile(p).patroni, ['3.0.2-1']), profile(p).patroni, p);
  assert.deepEqual(effectiveTiming({ ttl: 7, loop_wait: 1, retry_timeout: 3 }, ['3.1.2']), { ttl: 7, loop_wait: 1, retry_timeout: 3 }, '3.1 does not enforce yet');
});

test('Patroni 3.2 and later raise ttl to 20: balanced 12/2/5 -> 20/2/5, fast 7/1/3 -> 20/1/3, safe unchanged', () => {
  assert.deepEqual(effectiveTiming(profile('balanced').patroni, ['4.0.7-3~deb13u1']), {
    ttl: 20,
    loop_wait: 2,
    retry_timeout: 5,
    asked: { ttl: 12, loop_wait: 2, retry_timeout: 5 },
    by: '4.0.7-3~deb13u1',
    modern: true,
  });
  assert.deepEqual(effectiveTiming(profile('fast').patroni, ['3.2.0']), { ttl: 20, loop_wait: 1, retry_timeout: 3, asked: { ttl: 7, loop_wait: 1, retry_timeout: 3 }, by: '3.2.0', modern: true });
  assert.deepEqual(effectiveTiming(profile('safe').patroni, ['4.0.7']), { ttl: 30, loop_wait: 10, retry_timeout: 10, modern: true });
  assert.deepEqual(effectiveTiming(profile('safe').patroni, ['3.0.2']), { ttl: 30, loop_wait: 10, retry_timeout: 10 });
  // Mixed versions: the newest raises it (and its number is the one the DCS then holds for all).
  assert.equal(effectiveTiming(profile('balanced').patroni, ['3.0.2', '4.0.4-1.pgdg120+1']).by, '4.0.4-1.pgdg120+1');
});

test("Patroni's own adjustment when loop_wait + 2 * retry_timeout exceeds ttl (patroni/config.py)", () => {
  // loop_wait is cut first ...
  assert.deepEqual(effectiveTiming({ ttl: 20, loop_wait: 5, retry_timeout: 9 }, ['4.0.7']), { ttl: 20, loop_wait: 2, retry_timeout: 9, asked: { ttl: 20, loop_wait: 5, retry_timeout: 9 }, by: '4.0.7', modern: true });
  // ... retry_timeout only when loop_wait is at its minimum already; minimums first.
  assert.deepEqual(effectiveTiming({ ttl: 8, loop_wait: 0, retry_timeout: 10 }, ['4.0.7']), {
    ttl: 20,
    loop_wait: 1,
    retry_timeout: 9,
    asked: { ttl: 8, loop_wait: 0, retry_timeout: 10 },
    by: '4.0.7',
    modern: true,
  });
});

test('the summary apply, render and status print: the numbers in effect and what a failover takes', () => {
  const b = profile('balanced');
  assert.equal(
    timingSummary(b, effectiveTiming(b.patroni, ['3.0.2-1'])),
    'timing balanced: ttl 12 s, loop_wait 2 s, retry_timeout 5 s; an unplanned failover takes about 13-16 s (measured on the lab)',
  );
  assert.equal(
    timingSummary(b, effectiveTiming(b.patroni, ['4.0.7-3~deb13u1'])),
    "timing balanced: ttl 20 s, loop_wait 2 s, retry_timeout 5 s (Patroni 4.0.7 raises the profile's ttl 12 s: from Patroni 3.2 on ttl is at least 20 s); " +
      'an unplanned failover takes about 23-27 s (measured on the lab)',
  );
  const s = profile('safe');
  assert.equal(timingSummary(s, effectiveTiming(s.patroni, ['4.0.7'])), 'timing safe: ttl 30 s, loop_wait 10 s, retry_timeout 10 s; an unplanned failover takes about 36-37 s (measured on the lab)');
  // Overrides were never measured: the rule instead (lock expiry, then ~3 s).
  const o: Timing = { ...b, patroni: { ttl: 15, loop_wait: 3, retry_timeout: 5 }, overridden: true };
  assert.equal(
    timingSummary(o, effectiveTiming(o.patroni, ['4.0.7'])),
    "timing balanced with the inventory's patroni.* overrides: ttl 20 s, loop_wait 3 s, retry_timeout 5 s (Patroni 4.0.7 raises the inventory's ttl 15 s: " +
      'from Patroni 3.2 on ttl is at least 20 s); an unplanned failover takes about 20-23 s (the lock expires ttl - loop_wait to ttl after the fault, then ~3 s to elect, promote and route)',
  );
  assert.equal(failoverExpectation(profile('fast'), effectiveTiming(profile('fast').patroni, ['3.0.2'])), 'about 9-12 s (measured on the lab)');
});

test("the end-of-run note only when Patroni changes the inventory's timing", () => {
  const b = profile('balanced');
  assert.equal(raisedTimingNote(b, effectiveTiming(b.patroni, ['3.0.2'])), null);
  assert.equal(raisedTimingNote(profile('safe'), effectiveTiming(profile('safe').patroni, ['4.0.7'])), null);
  assert.equal(
    raisedTimingNote(profile('fast'), effectiveTiming(profile('fast').patroni, ['4.0.7-3~deb13u1'])),
    "Patroni 4.0.7 runs with ttl 20 s, loop_wait 1 s, retry_timeout 3 s, not the fast profile's ttl 7 s, loop_wait 1 s, retry_timeout 3 s: an unplanned " +
      'failover takes about 23-27 s (measured on the lab); balanced and fast both run with ttl 20 s there (fast only checks more often). ' +
      "pgha writes these numbers into Patroni's dynamic configuration",
  );
});
