import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

// The installed entry point (bin/pgha.js over dist/) as a user runs it after `npm ci`.
function pgha(...args: string[]) {
  return spawnSync(process.execPath, ['bin/pgha.js', ...args], { encoding: 'utf8' });
}

test('--help lists the program and exits 0', () => {
  const r = pgha('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: pgha/);
});

test('an unknown command is a usage error (exit 2)', () => {
  const r = pgha('no-such-command');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /too many arguments|unknown command/);
});
