// The command contract's conventions: which inventory a command uses (and that it says so), the
// SSH passphrase taken out of the environment, colours decided by NO_COLOR / FORCE_COLOR / a
// terminal, and confirmation without a terminal.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createContext, resolveInventory, setKeeperStart, takePassphraseFromEnv } from '../../../src/cli/context.js';
import { InputError } from '../../../src/errors.js';

const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

test('-i wins, then $PGHA_INVENTORY, then ./inventory.yml; none is bad input naming all three', () => {
  const has = (f: string) => f === 'inventory.yml';
  assert.deepEqual(resolveInventory('a.yml', { PGHA_INVENTORY: 'b.yml' }, has), { file: 'a.yml' });
  assert.deepEqual(resolveInventory(undefined, { PGHA_INVENTORY: 'b.yml' }, has), { file: 'b.yml', from: '$PGHA_INVENTORY' });
  assert.deepEqual(resolveInventory(undefined, {}, has), { file: 'inventory.yml', from: 'the current directory' });
  assert.throws(
    () => resolveInventory(undefined, {}, () => false),
    (e: Error) => e instanceof InputError && e.message === 'no inventory: give -i FILE, set PGHA_INVENTORY, or run pgha where ./inventory.yml is',
  );
});

test('the inventory used without -i is said on stderr, once', async () => {
  let err = '';
  const ctx = createContext({ env: { PGHA_INVENTORY: join(REPO, 'inventories/example.yml') }, err: (t) => void (err += t), out: () => {} });
  await ctx.inventory({ secretsOptional: true });
  assert.equal(ctx.inventoryFile, join(REPO, 'inventories/example.yml'));
  assert.equal(err, `pgha: inventory ${join(REPO, 'inventories/example.yml')} (from $PGHA_INVENTORY)\n`);
  await ctx.close();
});

test('PGHA_SSH_PASSPHRASE is taken out of the environment, so no child process sees it', () => {
  const env: NodeJS.ProcessEnv = { PGHA_SSH_PASSPHRASE: 'open sesame', OTHER: 'x' };
  takePassphraseFromEnv(env);
  assert.deepEqual(env, { OTHER: 'x' });
  takePassphraseFromEnv({}); // as a run without it
});

test('colours: a terminal or FORCE_COLOR turns them on, NO_COLOR (and FORCE_COLOR=0) off', () => {
  // kleur reads the environment when loaded: each case in a fresh process, stdout a pipe.
  const color = (env: Record<string, string>) => {
    const script = "import { createContext } from './src/cli/context.ts'; process.stdout.write(String(createContext().color));";
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['NO_COLOR', 'FORCE_COLOR', 'NODE_DISABLE_COLORS', 'TERM'].includes(k)));
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8', env: { ...clean, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  assert.equal(color({}), 'false', 'a pipe: no colours');
  assert.equal(color({ FORCE_COLOR: '1' }), 'true');
  assert.equal(color({ FORCE_COLOR: '0' }), 'false');
  assert.equal(color({ FORCE_COLOR: '1', NO_COLOR: '1' }), 'false', 'NO_COLOR wins');
  // On a terminal (a pseudo-terminal from script(1)): on, unless NO_COLOR.
  const onTty = (env: Record<string, string>) => {
    const script = "import { createContext } from './src/cli/context.ts'; process.stdout.write(String(createContext().color));";
    const cmd = `${process.execPath} --import tsx --input-type=module -e "${script.replace(/"/g, '\\"')}"`;
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['NO_COLOR', 'FORCE_COLOR', 'NODE_DISABLE_COLORS'].includes(k)));
    return spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: REPO, encoding: 'utf8', env: { ...clean, TERM: 'xterm', ...env } }).stdout.trim();
  };
  assert.equal(onTty({}), 'true');
  assert.equal(onTty({ NO_COLOR: '1' }), 'false', 'NO_COLOR is honoured on a terminal too');
});

test('a question without a terminal is refused with the flag to give, unless --yes', async () => {
  const ctx = createContext({ tty: false, out: () => {}, err: () => {} });
  await assert.rejects(ctx.confirm('go?', { noTerminal: 'restore: add --yes' }), (e: Error) => e instanceof InputError && e.message === 'restore: add --yes');
  await ctx.confirm('go?', { yes: true, noTerminal: 'restore: add --yes' });
});

test('PGHA_SSH_PASSPHRASE is the passphrase (once: a wrong one is not tried again); without it and a terminal, none', async () => {
  const given = createContext({ passphrase: 'from the environment', tty: false, out: () => {}, err: () => {} }).sessionOptions().passphrase!;
  assert.equal(await given('/k', undefined), 'from the environment');
  assert.equal(await given('/k', 'wrong passphrase for /k'), undefined);
  const none = createContext({ tty: false, out: () => {}, err: () => {} }).sessionOptions().passphrase!;
  assert.equal(await none('/k', undefined), undefined);
});

test('on a terminal the passphrase is asked once per key file, masked, on stderr', async () => {
  // A real terminal (tmux on its own socket): two connections' worth of asking, one prompt.
  const { mkdtempSync: mk, readFileSync: rd, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mk(join(tmpdir(), 'pgha-pass-'));
  const socket = join(dir, 'tmux.sock');
  const out = join(dir, 'out');
  const script = [
    "import { createContext } from './src/cli/context.ts';",
    'const ask = createContext().sessionOptions().passphrase;',
    "const [a, b] = await Promise.all([ask('/keys/id_a', undefined), ask('/keys/id_a', undefined)]);",
    `(await import('node:fs')).writeFileSync(${JSON.stringify(out)}, JSON.stringify([a, b]));`,
  ].join(' ');
  const tmux = (...args: string[]) => spawnSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  const cmd = `cd ${REPO} && ${process.execPath} --import tsx --input-type=module -e ${JSON.stringify(script).replace(/\$/g, '\\$')}; sleep 60`;
  assert.equal(tmux('new-session', '-d', '-s', 'pass', '-x', '120', '-y', '20', cmd).status, 0);
  try {
    const screen = () => tmux('capture-pane', '-p', '-t', 'pass').stdout;
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 150 && !re.test(screen()); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(screen(), re);
    };
    await waitFor(/Passphrase for \/keys\/id_a/);
    tmux('send-keys', '-t', 'pass', '-l', 'typed secret');
    tmux('send-keys', '-t', 'pass', 'Enter');
    for (let i = 0; i < 100; i++) {
      try {
        assert.deepEqual(JSON.parse(rd(out, 'utf8')), ['typed secret', 'typed secret']);
        break;
      } catch (e) {
        if (i === 99) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(screen().match(/Passphrase for/g)?.length, 1, 'asked once');
    assert.doesNotMatch(screen(), /typed secret/, 'never shown');
  } finally {
    tmux('kill-server');
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a connection keeper only for the CLI: started as the CLI's own entry with node's loader flags, never as the calling file", () => {
  // A flow run in-process (as tests do) has no keeper: it would start whatever file is running.
  assert.equal(createContext({ env: { PGHA_RUNTIME_DIR: '/nonexistent-parent/pgha' } }).keeper?.(), undefined);
  setKeeperStart('/opt/pgha/dist/bundle/main.js');
  const place = createContext().keeper?.();
  assert.ok(place, 'a keeper place once main() said how to start one');
  assert.equal(place.start[0], process.execPath);
  assert.equal(place.start.at(-1), '/opt/pgha/dist/bundle/main.js');
  assert.ok(!place.start.some((a) => a.startsWith('--test')), place.start.join(' '));
  assert.match(place.socketPath, /keeper-3-[\d.]+\.sock$/);
});
