// The installable package: `npm pack`, installed with npm into a temp prefix as an operator
// would (`npm install -g`), then `pgha init`, `validate` and `render` run from there, outside
// the repository. Proves the tarball ships what the CLI needs (dist, templates, the JSON Schema
// the inventory's $schema comment points at, the example inventory).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const dir = mkdtempSync(join(tmpdir(), 'pgha-package-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the packed tarball, installed into a temp prefix, runs init, validate and render', { timeout: 600_000 }, () => {
  // Under npm test, `npm ci` has just built dist/ from this tree (the prepare script): packing
  // need not build it again. Run alone, npm pack builds it as it does for a release.
  const scripts = process.env.PGHA_TEST_BUILT === '1' ? ['--ignore-scripts'] : [];
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', ...scripts, '--pack-destination', dir], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
    filename: string;
    files: { path: string }[];
  }[];
  const shipped = packed[0].files.map((f) => f.path);
  for (const f of ['bin/pgha.js', 'dist/bundle/main.js', 'templates/patroni/patroni.yml.hbs', 'schema/inventory.schema.json', 'inventories/example.yml']) {
    assert.ok(shipped.includes(f), `${f} is not in the package`);
  }
  assert.ok(!shipped.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'sources and tests stay out of the package');

  const prefix = join(dir, 'prefix');
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed[0].filename)], { stdio: 'ignore' });
  const bin = join(prefix, 'bin', 'pgha');
  const work = join(dir, 'work');
  mkdirSync(work);
  // Run from elsewhere, with the environment `npm run` gives another project's scripts.
  const run = (...args: string[]) => spawnSync(bin, args, { cwd: work, encoding: 'utf8', env: { ...process.env, npm_package_version: '9.9.9', NO_COLOR: '1' } });

  const version = run('--version');
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version, 'its own version, not the calling project\'s');

  const init = run('init', '--name', 'demo', '--host', 'pg1=10.0.10.11', '--host', 'pg2=10.0.10.12', '--host', 'pg3=10.0.10.13', '--host', 'bk=10.0.10.20', '--repo-host', 'bk');
  assert.equal(init.status, 0, init.stderr);
  const inventory = readFileSync(join(work, 'inventory.yml'), 'utf8');
  const schemaRef = /^# yaml-language-server: \$schema=(\S+)$/m.exec(inventory)![1];
  const schemaFile = resolve(work, schemaRef);
  assert.ok(existsSync(schemaFile), `$schema=${schemaRef} does not resolve from the inventory`);
  assert.ok(schemaFile.startsWith(prefix), 'it points at the installed package');
  assert.equal(readFileSync(schemaFile, 'utf8'), readFileSync(join(REPO, 'schema/inventory.schema.json'), 'utf8'));

  const validate = run('validate', '-i', 'inventory.yml');
  assert.equal(validate.status, 0, validate.stderr);
  assert.match(validate.stdout, /^inventory\.yml: ok \(cluster demo: 4 hosts/);

  const render = run('render', '-i', 'inventory.yml', '-o', 'rendered');
  assert.equal(render.status, 0, render.stderr);
  assert.match(render.stdout, /files rendered/);
  assert.match(readFileSync(join(work, 'rendered/pg1/etc/patroni/config.yml'), 'utf8'), /^scope: "demo"$/m);
  assert.deepEqual(readdirSync(join(work, 'rendered')).sort(), ['bk', 'pg1', 'pg2', 'pg3']);

  // The shipped example checks without its secrets file (which only a real cluster has).
  const example = join(dirname(schemaFile), '..', 'inventories', 'example.yml');
  const ex = run('validate', '-i', example);
  assert.equal(ex.status, 0, ex.stderr);
  assert.match(ex.stderr, /^note: secrets file .*example\.secrets\.yml not found: the inventory was checked without it/m);
});
