// The chaos soak's seeded fault sequence: the same seed gives the same faults, targets and pauses
// (a failing soak can be replayed), another seed another sequence, and every kind comes up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAULT_KINDS, mulberry32, planFaults, targetOf } from './plan.js';

test('mulberry32: reproducible numbers in [0, 1)', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(Array.from({ length: 1000 }, () => b()), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  // Known first value of mulberry32(42) (the reference implementation's).
  assert.equal(mulberry32(42)(), 0.6011037519201636);
  assert.notDeepEqual(Array.from({ length: 10 }, mulberry32(43)), xs.slice(0, 10));
});

test('planFaults: the same seed gives the same sequence; a prefix of a longer one', () => {
  const p = planFaults(22, 50);
  assert.deepEqual(planFaults(22, 50), p);
  assert.deepEqual(planFaults(22, 7), p.slice(0, 7));
  assert.notDeepEqual(planFaults(23, 50), p);
  assert.deepEqual(planFaults(22, 0), []);
});

test('planFaults: every kind comes up; pauses within the range asked', () => {
  const p = planFaults(7, 500, { minS: 3, maxS: 9 });
  assert.deepEqual(new Set(p.map((f) => f.kind)), new Set(FAULT_KINDS));
  assert.ok(p.every((f) => Number.isInteger(f.pauseS) && f.pauseS >= 3 && f.pauseS <= 9));
  assert.deepEqual(new Set(p.map((f) => f.pauseS)), new Set([3, 4, 5, 6, 7, 8, 9]));
  assert.ok(p.every((f) => Number.isInteger(f.target) && f.target >= 0 && f.target < 1000));
});

test('targetOf: the target indexes the replicas of the moment, wrapping around', () => {
  assert.equal(targetOf({ kind: 'partition replica', target: 0, pauseS: 5 }, ['node2', 'node3']), 'node2');
  assert.equal(targetOf({ kind: 'partition replica', target: 5, pauseS: 5 }, ['node2', 'node3']), 'node3');
  assert.throws(() => targetOf({ kind: 'switchover', target: 1, pauseS: 5 }, []), /no replica/);
});
