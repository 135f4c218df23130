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

test('a bare Error is a bug by construction: every `new Error(` in src is a programming-error site', async () => {
  // Operator-caused conditions throw a PghaError (or a subclass) with their exit code; what is
  // left here can only be reached through a mistake in pgha itself, and then exit 70 is right.
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const sites: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) readFileSync(p, 'utf8').split('\n').forEach((l) => l.includes('new Error(') && sites.push(`${p}: ${/new Error\(['`](.{0,20})/.exec(l)![1]}`));
    }
  };
  walk('src');
  assert.deepEqual(sites.sort(), [
    'src/cluster/converge.ts: topology steps never',
    'src/components/index.ts: rendering needs the ',
    'src/components/types.ts: no rendered ${path} ',
    'src/ssh/connection.ts: bad file mode ${JSON',
    'src/ssh/quote.ts: empty command\');',
    "src/ssh/ssh.ts: timeout'), { level: ",
  ]);
});

test('an unknown inventory file is bad input (exit 2), not a bug', () => {
  const r = pgha('validate', '-i', 'no/such/inventory.yml');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^pgha: cannot read inventory no\/such\/inventory\.yml: ENOENT/m);
  assert.doesNotMatch(r.stderr, /internal error/);
});

test('replace and reinit: bad input and a missing --yes without a terminal are refused before any host is contacted (exit 2)', async () => {
  const { fixtureInventory } = await import('../inventory-fixture.js');
  // Addresses nobody answers at: a contact would show as a connection error instead.
  const inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg3'], postgres: ['pg1', 'pg2', 'pg3'], haproxy: ['pg1'] });
  const unknown = pgha('replace', '-i', inv.file, 'pg9', '--yes');
  assert.equal(unknown.status, 2, unknown.stderr);
  assert.match(unknown.stderr, /^pgha: no host named pg9 in /m);
  const noYes = pgha('replace', '-i', inv.file, 'pg2');
  assert.equal(noYes.status, 2, noYes.stderr);
  assert.match(noYes.stderr, /^pgha: replace pg2 records its new host key and rebuilds it as a member, and needs a confirmation, but there is no terminal to ask on: check the fingerprint, then add --yes$/m);
  const reinit = pgha('reinit', '-i', inv.file, 'pg2');
  assert.equal(reinit.status, 2, reinit.stderr);
  assert.match(reinit.stderr, /^pgha: reinit replaces pg2's data and needs a confirmation, but there is no terminal to ask on: add --yes to go ahead without asking$/m);
  const missing = pgha('reinit', '-i', inv.file);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /missing required argument 'member'/);
});
