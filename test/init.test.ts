// `pgha init` as a user runs it: the CLI without a terminal (flags), and once through a real
// pseudo-terminal (tmux) answering the wizard's prompts by keystrokes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

function pgha(cwd: string, ...args: string[]) {
  // stdin is not a terminal here: init must never prompt.
  return spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'pgha-init-cli-'));
  dirs.push(d);
  return d;
};

// The container lab's hosts: node4 is the backup repository host.
const LAB = ['--name', 'lab', '--ssh-user', 'admin', '--repo-host', 'node4'].concat(
  ...[1, 2, 3, 4].map((i) => ['--host', `node${i}=10.88.213.${10 + i}`]),
);

test('non-interactive init for the lab writes an inventory that pgha validate accepts', () => {
  const dir = tmp();
  const r = pgha(dir, 'init', ...LAB, '--output', 'lab.yml');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /lab\.yml +\(inventory\)/);
  assert.match(r.stdout, /pgha validate -i lab\.yml/);
  assert.match(r.stdout, /pgha apply -i lab\.yml --accept-new-host-keys/);
  assert.equal(existsSync(join(dir, 'known_hosts')), false, 'no host key may be trusted silently');

  const v = pgha(dir, 'validate', '-i', 'lab.yml');
  assert.equal(v.status, 0, v.stdout + v.stderr);

  const inv = readFileSync(join(dir, 'lab.yml'), 'utf8');
  assert.match(inv, /^# yaml-language-server: \$schema=\S+inventory\.schema\.json$/m);
  assert.match(inv, /^secrets: lab\.secrets\.yml$/m);
  assert.match(inv, /^ {2}backup_repository: node4 /m);
  assert.match(inv, /^ {2}user: admin /m);

  const secretsFile = join(dir, 'lab.secrets.yml');
  assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
  const secrets = Object.fromEntries(
    [...readFileSync(secretsFile, 'utf8').matchAll(/^(\w+_password): (\S+)$/gm)].map((m) => [m[1], m[2]]),
  );
  assert.deepEqual(Object.keys(secrets).sort(), ['replication_password', 'restapi_password', 'rewind_password', 'superuser_password']);
  for (const p of Object.values(secrets)) {
    assert.match(p, /^[A-Za-z0-9_-]{32}$/);
    assert.ok(/[A-Z]/.test(p) || /[a-z]/.test(p));
    assert.ok(!r.stdout.includes(p) && !r.stderr.includes(p) && !v.stdout.includes(p) && !v.stderr.includes(p), 'a password was printed');
  }
  assert.equal(new Set(Object.values(secrets)).size, 4);
});

test('without a terminal, missing flags are all named (exit 2) and nothing is written', () => {
  const dir = tmp();
  const r = pgha(dir, 'init');
  assert.equal(r.status, 2);
  for (const flag of ['--name', '--host', '--repo-host', '--repo-path']) assert.match(r.stderr, new RegExp(flag));
  assert.deepEqual(readdirSync(dir), []);

  const partial = pgha(dir, 'init', '--host', 'a=10.0.0.1');
  assert.equal(partial.status, 2);
  assert.match(partial.stderr, /missing --name/);
  assert.match(partial.stderr, /missing --repo-host NAME or --repo-path PATH/);
  assert.doesNotMatch(partial.stderr, /missing --host/);
  assert.deepEqual(readdirSync(dir), []);
});

test('an existing inventory is refused without --force and left untouched', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'inventory.yml'), 'my own inventory\n');
  const r = pgha(dir, 'init', ...LAB);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /refusing to overwrite.*--force/);
  assert.match(r.stderr, /inventory\.yml/);
  assert.equal(readFileSync(join(dir, 'inventory.yml'), 'utf8'), 'my own inventory\n');
  assert.deepEqual(readdirSync(dir), ['inventory.yml']);

  const forced = pgha(dir, 'init', ...LAB, '--force');
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(pgha(dir, 'validate', '-i', 'inventory.yml').status, 0);
});

test('hostile flag values are refused (exit 2, nothing written), escaped when echoed', () => {
  const dir = tmp();
  const hosts = [1, 2, 3].flatMap((i) => ['--host', `node${i}=10.88.213.${10 + i}`]);
  const cases: [string[], RegExp][] = [
    [['--repo-path', '/mnt/backup\nx'], /the shared repository path must be absolute, without spaces or control characters/],
    [['--repo-path', '/mnt/backup', '--ssh-user', "admin'; touch /tmp/x; echo '"], /"admin'; touch \/tmp\/x; echo '" is not a user name/],
    [['--repo-path', '/mnt/backup', '--apt-proxy', 'http://10.0.0.1:3142/";APT::X "1";//'], /expected a plain URL http\(s\):\/\/HOST/],
    [['--repo-path', '/mnt/backup', '--host', 'node4=127.0.0.2'], /"127\.0\.0\.2": a loopback address/],
    [['--repo-path', '/mnt/backup', '--name', 'c\x1b]0;x\x07'], /a cluster name is letters, digits/],
    [['--repo-path', '/mnt/backup', '--host', 'no\x1b[2Jde5=10.88.213.15'], /"no\\x1b\[2Jde5" is not a valid host name/],
  ];
  for (const [flags, why] of cases) {
    const r = pgha(dir, 'init', '--name', 'lab', ...hosts, ...flags);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, why);
    assert.doesNotMatch(r.stderr, /internal error|\.pgha-init-|\n {4}at /);
    assert.doesNotMatch(r.stderr, /[\x00-\x09\x0b-\x1f\x7f]/, 'no raw control character');
    assert.deepEqual(readdirSync(dir), []);
  }
});

test('--scan-host-keys without --yes is refused', () => {
  const dir = tmp();
  const r = pgha(dir, 'init', ...LAB, '--scan-host-keys');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--yes/);
  assert.deepEqual(readdirSync(dir), []);
});

// ---- Through a real terminal: tmux on its own socket, one named session per test. ----

// A socket of our own (removed with the temp dirs), never the user's tmux server.
const SOCKET = join(tmp(), 'tmux.sock');
const sessions: string[] = [];
const tmux = (...args: string[]) => spawnSync('tmux', ['-S', SOCKET, ...args], { encoding: 'utf8' });

after(() => {
  for (const s of sessions) tmux('kill-session', '-t', s);
  for (const d of dirs) rmSync(d, { recursive: true, force: true }); // the socket too, so after the sessions
});

function startWizard(name: string) {
  const dir = tmp();
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not a real key\n');
  const work = join(dir, 'work');
  mkdirSync(work);
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  // The shell stays after pgha exits so its exit code can be read off the screen.
  const cmd = `cd ${q(work)} && HOME=${q(home)} ${q(process.execPath)} --import ${q(TSX)} ${q(MAIN)} init; echo "EXIT=$?"; sleep 600`;
  const r = tmux('new-session', '-d', '-s', name, '-x', '160', '-y', '60', cmd);
  assert.equal(r.status, 0, r.stderr);
  sessions.push(name);
  const screen = () => tmux('capture-pane', '-p', '-S', '-200', '-t', name).stdout;
  let seen = 0; // the screen only grows downwards (the pane is tall enough); match below what was seen
  const waitFor = async (re: RegExp, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = screen().split('\n');
      const i = lines.findIndex((l, n) => n >= seen && re.test(l));
      if (i >= 0) {
        seen = i;
        return;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; screen:\n${screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // Key names (Enter, C-u, C-c) are sent as keys, anything else is typed literally.
  const keys = (...k: string[]) => {
    for (const key of k) {
      const args = /^(Enter|C-[a-z])$/.test(key) ? [key] : [key];
      assert.equal(tmux('send-keys', '-t', name, ...args).status, 0);
    }
  };
  const answer = async (re: RegExp, ...k: string[]) => {
    await waitFor(re);
    keys(...k);
  };
  return { work, screen, waitFor, keys, answer };
}

test('the wizard in a real terminal: prompts, re-asked answers, files written', async () => {
  const name = `pgha-init-wizard-${process.pid}`;
  const t = startWizard(name);
  await t.answer(/Cluster name/, 'lab', 'Enter');
  await t.answer(/PostgreSQL major version.*15/, 'Enter');
  await t.answer(/Host 1 name/, 'node1', 'Enter');
  await t.answer(/node1 address/, '10.88.213.11', 'Enter');
  await t.answer(/Host 2 name/, 'node1', 'Enter');
  await t.answer(/already listed/, 'C-u', 'node2', 'Enter');
  await t.answer(/node2 address/, 'not_an_address', 'Enter');
  await t.answer(/is not an IP address or host name/, 'C-u', '10.88.213.12', 'Enter');
  for (const i of [3, 4]) {
    await t.answer(new RegExp(`Host ${i} name`), `node${i}`, 'Enter');
    await t.answer(new RegExp(`node${i} address`), `10.88.213.1${i}`, 'Enter');
  }
  await t.answer(/Host 5 name \(empty when done\)/, 'Enter');
  await t.answer(/SSH user.*admin/, 'Enter');
  await t.answer(/SSH port.*22/, 'Enter');
  await t.answer(/SSH private key.*id_ed25519/, 'Enter');
  await t.answer(/Hosts running etcd.*node1,node2,node3/, 'C-u', 'node1,node2', 'Enter');
  await t.answer(/etcd: needs an odd number of members/, 'C-u', 'Enter'); // back to the default
  await t.answer(/Hosts running PostgreSQL/, 'Enter');
  await t.answer(/Hosts running HAProxy/, 'Enter');
  await t.answer(/Where does the pgBackRest backup repository live/, 'Enter');
  await t.answer(/Repository host/, 'Enter');
  await t.answer(/Synchronous replication/, 'Enter');
  await t.answer(/Use the default ports \(PostgreSQL 5432, Patroni REST API 8008, etcd client 2379, etcd peer 2380/, 'Enter');
  await t.answer(/APT proxy/, 'Enter');
  await t.answer(/Test SSH to each host now/, 'n', 'Enter');
  await t.waitFor(/EXIT=0/);
  const screen = t.screen();
  assert.match(screen, /pgha validate -i inventory\.yml/);

  assert.deepEqual(readdirSync(t.work).sort(), ['inventory.secrets.yml', 'inventory.yml']);
  assert.equal(statSync(join(t.work, 'inventory.secrets.yml')).mode & 0o777, 0o600);
  const v = pgha(t.work, 'validate', '-i', 'inventory.yml');
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const inv = readFileSync(join(t.work, 'inventory.yml'), 'utf8');
  assert.match(inv, /^ {2}etcd: \[node1, node2, node3\]/m);
  assert.match(inv, /^ {2}backup_repository: node4/m);
  for (const m of readFileSync(join(t.work, 'inventory.secrets.yml'), 'utf8').matchAll(/_password: (\S+)/g)) {
    assert.ok(!screen.includes(m[1]), 'a password was shown on the screen');
  }
  tmux('kill-session', '-t', name);
});

test('Ctrl+C in the middle of the wizard leaves no files and exits 130', async () => {
  const name = `pgha-init-ctrlc-${process.pid}`;
  const t = startWizard(name);
  await t.answer(/Cluster name/, 'lab', 'Enter');
  await t.answer(/PostgreSQL major version/, 'Enter');
  await t.answer(/Host 1 name/, 'node1', 'Enter');
  await t.answer(/node1 address/, '10.88.2');
  t.keys('C-c');
  await t.waitFor(/EXIT=130/);
  assert.match(t.screen(), /interrupted: nothing was written/);
  assert.deepEqual(readdirSync(t.work), []);
  tmux('kill-session', '-t', name);
});
