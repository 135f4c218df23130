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
    'src/package-files.ts: pgha: cannot find it', // a broken installation, not an operator's input
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

// ---------------------------------------------------------------- CLI conventions (issue 16)

import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { assertSnakeCase } from '../../helpers.js';

const REPO = resolve(new URL('../../..', import.meta.url).pathname);
function pghaIn(cwd: string, env: NodeJS.ProcessEnv, ...args: string[]) {
  return spawnSync(process.execPath, [join(REPO, 'bin/pgha.js'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, PGHA_INVENTORY: '', ...env } });
}

/** A directory with an inventory whose hosts sit behind a jump host that refuses (loopback port 1): nothing is reachable. */
function unreachableCluster(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-cli-'));
  copyFileSync(join(REPO, 'test/fixtures/secrets/test-secrets.yaml'), join(dir, 'secrets.yml'));
  chmodSync(join(dir, 'secrets.yml'), 0o600);
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id_test')]);
  writeFileSync(
    join(dir, 'inventory.yml'),
    readFileSync(join(REPO, 'test/fixtures/inventories/valid.yml'), 'utf8') + 'ssh:\n  jump: admin@127.0.0.1:1\n  private_key: id_test\n  connect_timeout: 3\n  config_file: null\n',
  );
  return dir;
}

test('pgha with no command prints the help on stderr and exits 2', () => {
  const r = pgha();
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^Usage: pgha \[options\] \[command\]/);
  assert.match(r.stderr, /^ {2}completion <shell> +print a shell completion script/m);
});

test("--version is pgha's own, also under another project's npm run", () => {
  const own = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
  const r = spawnSync(process.execPath, ['bin/pgha.js', '--version'], { encoding: 'utf8', env: { ...process.env, npm_package_version: '9.9.9' } });
  assert.equal(r.stdout.trim(), own);
});

test('status: bad input or no inventory is 3 (unknown), as monitoring plugins expect; --json says unknown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-cli-'));
  const none = pghaIn(dir, {}, 'status');
  assert.equal(none.status, 3);
  assert.match(none.stderr, /^pgha: no inventory: give -i FILE, set PGHA_INVENTORY, or run pgha where \.\/inventory\.yml is$/m);
  const json = pghaIn(dir, {}, 'status', '--json', '-i', 'missing.yml');
  assert.equal(json.status, 3);
  assert.deepEqual(JSON.parse(json.stdout), { cluster: null, verdict: 'unknown', reasons: ['cannot read inventory missing.yml: ENOENT'] });
  assert.equal(pghaIn(dir, {}, 'status', '--bogus').status, 3);
  assert.equal(pghaIn(dir, {}, 'verify', '--bogus').status, 2, 'other commands keep 2 for bad input');
});

test('-i defaults to $PGHA_INVENTORY, then ./inventory.yml, and says which', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-cli-'));
  const env = pghaIn(dir, { PGHA_INVENTORY: join(REPO, 'inventories/example.yml') }, 'validate');
  assert.equal(env.status, 0, env.stderr);
  assert.match(env.stderr, /^pgha: inventory .*inventories\/example\.yml \(from \$PGHA_INVENTORY\)$/m);
  copyFileSync(join(REPO, 'inventories/example.yml'), join(dir, 'inventory.yml'));
  const cwd = pghaIn(dir, {}, 'validate');
  assert.equal(cwd.status, 0, cwd.stderr);
  assert.match(cwd.stderr, /^pgha: inventory inventory\.yml \(from the current directory\)$/m);
  assert.match(cwd.stdout, /^inventory\.yml: ok/);
});

test('validate in a fresh clone: the example checks without its secrets file, with a note; --json locates problems', () => {
  const ok = pgha('validate', '-i', 'inventories/example.yml');
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /^note: secrets file inventories\/example\.secrets\.yml not found: the inventory was checked without it/m);
  const bad = pgha('validate', '-i', 'test/fixtures/inventories/three-problems.yml', '--json');
  assert.equal(bad.status, 2);
  const doc = JSON.parse(bad.stdout);
  assertSnakeCase(doc);
  assert.equal(doc.ok, false);
  assert.equal(doc.problems.length, 3);
  assert.deepEqual(Object.keys(doc.problems[0]), ['file', 'line', 'column', 'message']);
  assert.equal(doc.problems[0].file, 'test/fixtures/inventories/three-problems.yml');
  assert.ok(Number.isInteger(doc.problems[0].line) && doc.problems[0].line > 0);
});

test('restore takes -y like every command that asks', () => {
  const r = pgha('restore', '-i', 'inventories/example.yml', '-y');
  assert.equal(r.status, 2);
  assert.doesNotMatch(r.stderr, /unknown option/);
  assert.match(r.stderr, /give exactly one of --to TIME and --backup LABEL/);
});

test('apply --limit with a name not in the inventory is bad input naming the hosts', () => {
  const dir = unreachableCluster();
  const r = pghaIn(dir, { PGHA_LOG_DIR: join(dir, 'logs') }, 'apply', '--limit', 'pg2,pg9');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^pgha: --limit: no host named pg9 in the inventory, expected some of: pg1, pg2, pg3, bk$/m);
});

test('apply when no host can be reached: a recap naming each unreachable host, nothing changed, a run log', () => {
  const dir = unreachableCluster();
  const logs = join(dir, 'logs');
  const r = pghaIn(dir, { PGHA_LOG_DIR: logs }, 'apply');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /^RECAP\npg1 +ok=0 +changed=0 +failed=0 +unreachable=1 +\(jump host admin@127\.0\.0\.1:1: cannot connect to 127\.0\.0\.1:1: connection refused/m);
  for (const h of ['pg2', 'pg3', 'bk']) assert.match(r.stdout, new RegExp(`^${h} +ok=0 +changed=0 +failed=0 +unreachable=1 `, 'm'));
  assert.match(r.stdout, /^nothing was changed: apply needs every host of the inventory/m);
  assert.match(r.stderr, /^pgha: could not connect to 4 of 4 host\(s\):$/m);
  const [log] = readdirSync(logs);
  assert.match(log, /^\d{8}T\d{6}Z-apply\.log$/);
  assert.match(r.stderr, new RegExp(`^pgha: the log of this run is ${join(logs, log)}$`, 'm'));
  const text = readFileSync(join(logs, log), 'utf8');
  assert.match(text, /^\S+ > RECAP$/m);
  assert.match(text, /^\S+ ! pgha: could not connect to 4 of 4 host\(s\):$/m);
  assert.match(text, /^\S+ === exit 1$/m);
  assert.doesNotMatch(text, /test-superuser-pw-1/);

  const json = pghaIn(dir, { PGHA_LOG_DIR: logs }, 'apply', '--json', '--no-log');
  assert.equal(json.status, 1);
  const doc = JSON.parse(json.stdout);
  assertSnakeCase(doc);
  assert.equal(doc.ok, false);
  assert.deepEqual(doc.hosts.map((h: { name: string; unreachable: boolean }) => [h.name, h.unreachable]), [['pg1', true], ['pg2', true], ['pg3', true], ['bk', true]]);
  assert.match(doc.hosts[0].error, /connection refused/);
  assert.equal(readdirSync(logs).length, 1, '--no-log wrote no log');
  assert.match(json.stderr, /^RECAP$/m, 'with --json the recap text goes to stderr');
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

test('output to a reader that went away (`pgha ... | head -1`) ends quietly with the exit code, no EPIPE stack', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['bin/pgha.js', 'init', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before pgha writes a byte
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
  assert.equal(code, 0);
});

test('the installed entry point runs the bundle: templates and the schema are found from dist/bundle', async () => {
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const out = mkdtempSync(join(tmpdir(), 'pgha-render-'));
  const r = pgha('render', '-i', 'inventories/example.yml', '-o', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(out, 'pg1/etc/patroni/config.yml'), 'utf8'), /^scope: /m);
});

test('the bundle loads @peculiar/x509 and reflect-metadata from their packages (inlined, signing a host certificate failed: "Cannot read properties of undefined")', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const chunks = readdirSync('dist/bundle').filter((f) => f.endsWith('.js')).map((f) => readFileSync(`dist/bundle/${f}`, 'utf8'));
  assert.ok(chunks.some((c) => /import\("@peculiar\/x509"\)|from "@peculiar\/x509"/.test(c)), '@peculiar/x509 is not imported from its package');
  assert.ok(chunks.some((c) => /import\("reflect-metadata"\)|from "reflect-metadata"/.test(c)), 'reflect-metadata is not imported from its package');
  assert.ok(!chunks.some((c) => /(var|class) SubjectAlternativeNameExtension\b/.test(c)), '@peculiar/x509 is inlined in the bundle');
});
