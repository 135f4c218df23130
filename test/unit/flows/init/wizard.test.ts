// `pgha init`'s wizard: prompts answered through a scripted terminal (invalid answers re-asked,
// host keys confirmed, Ctrl+C writes nothing), and once through a real pseudo-terminal (tmux).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { loadInventory, secretValues } from '../../../../src/inventory/index.js';
import { EXIT, PghaError } from '../../../../src/errors.js';
import { DEFAULTS } from '../../../../src/flows/init/answers.js';
import { fingerprint, type HostProbe } from '../../../../src/flows/init/hostkeys.js';
import { runInit } from '../../../../src/flows/init/init.js';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

function pgha(cwd: string, ...args: string[]) {
  return spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'pgha-init-'));
  dirs.push(d);
  return d;
};

// A scripted terminal for the wizard: waits for each prompt on the output, then types.
class Term {
  input = new PassThrough();
  text = '';
  private cursor = 0;
  private waiters: (() => void)[] = [];
  output: Writable;
  constructor() {
    const self = this;
    this.output = new Writable({
      write(chunk, _enc, cb) {
        self.text += String(chunk).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
        self.waiters.splice(0).forEach((w) => w());
        cb();
      },
    });
    // Each prompt ends the stream it was given: keep this one open for the next prompt.
    this.output.end = (() => this.output) as Writable['end'];
  }
  async expect(re: RegExp, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text.slice(this.cursor));
      if (m) {
        this.cursor += m.index + m[0].length;
        return;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; screen tail:\n${this.text.slice(-600)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  async answer(re: RegExp, keys: string) {
    await this.expect(re);
    await new Promise((r) => setImmediate(r));
    this.input.write(keys);
  }
}

const ENTER = '\r';
const DOWN = '\x1b[B';
const CLEAR = '\x15'; // Ctrl+U: clear the line after a refused answer

// A fixed ed25519-shaped host key per address; login always works.
function fakeKey(address: string): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const len = (n: number) => Buffer.from([0, 0, 0, n]);
  return Buffer.concat([len(type.length), type, len(32), Buffer.alloc(32, address)]);
}
const fakeProbe: HostProbe = {
  fetchKey: async (address) => fakeKey(address),
  login: async () => {},
};

function setup() {
  const dir = tmp();
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not a real key\n');
  const term = new Term();
  let out = '';
  const deps = {
    tty: true,
    context: { input: term.input, output: term.output },
    out: (t: string) => {
      out += t;
      term.output.write(t);
    },
    cwd: dir,
    home,
    probe: fakeProbe,
  };
  return { dir, term, deps, out: () => out };
}

test('wizard: answers typed into the prompts, invalid ones re-asked, host keys confirmed', async () => {
  const { dir, term, deps, out } = setup();
  const run = runInit({ output: 'inventory.yml' }, deps);
  await term.expect(/pgha init writes three files for a new cluster/);
  await term.answer(/Cluster name/, 'lab' + ENTER);
  await term.answer(/PostgreSQL major version/, ENTER);
  await term.answer(/Host 1 name/, 'node1' + ENTER);
  await term.answer(/node1 address/, '10.88.213.999' + ENTER);
  await term.answer(/is not an IP address or host name/, CLEAR + '10.88.213.11' + ENTER);
  await term.answer(/Host 2 name/, 'node1' + ENTER);
  await term.answer(/host "node1" is already listed/, CLEAR + 'node2' + ENTER);
  await term.answer(/node2 address/, '10.88.213.11' + ENTER);
  await term.answer(/already used by another host/, CLEAR + '10.88.213.12' + ENTER);
  await term.answer(/Host 3 name/, ENTER); // too early to stop
  await term.answer(/at least 3 hosts are needed/, 'node3' + ENTER);
  await term.answer(/node3 address/, '10.88.213.13' + ENTER);
  await term.answer(/Host 4 name \(empty when done\)/, 'node4' + ENTER);
  await term.answer(/node4 address/, '10.88.213.14' + ENTER);
  await term.answer(/Host 5 name \(empty when done\)/, ENTER);
  await term.answer(/SSH user/, ENTER);
  await term.answer(/SSH port/, ENTER);
  await term.answer(/SSH private key \(empty: the ssh-agent/, ENTER);
  // Checkboxes: the first three are checked; 4 toggles node4 (4 members: refused), 4 again and Enter.
  await term.answer(/Hosts running etcd/, '4' + ENTER);
  await term.answer(/etcd: needs an odd number of members, at least 3 \(got 4\)/, '4' + ENTER);
  await term.answer(/Hosts running PostgreSQL/, ENTER);
  await term.answer(/Hosts running HAProxy/, ENTER);
  await term.answer(/Where does the pgBackRest backup repository live/, ENTER);
  await term.answer(/Repository host/, ENTER); // node4, the one host without postgres
  await term.answer(/Synchronous replication/, 'y' + ENTER);
  await term.answer(/Use the default ports/, ENTER);
  await term.answer(/Client networks allowed to connect/, '10.88.213.7/24' + ENTER);
  await term.answer(/host bits set past \/24/, CLEAR + '10.88.213.0/24' + ENTER);
  await term.answer(/APT proxy/, 'http://10.88.213.1:3142' + ENTER);
  await term.answer(/Test SSH to each host now/, ENTER);
  for (const [i, n] of ['node1', 'node2', 'node3', 'node4'].entries()) {
    await term.expect(new RegExp(`${n} \\(10\\.88\\.213\\.1${i + 1}:22\\) host key: ssh-ed25519 ${fingerprint(fakeKey(`10.88.213.1${i + 1}`)).replace(/[+/]/g, '\\$&')}`));
    // node3's key is refused: it must not be recorded.
    await term.answer(new RegExp(`Is this ${n}'s host key\\?`), (n === 'node3' ? 'n' : 'y') + ENTER);
  }
  // Every answer shown before anything is written.
  await term.expect(/Summary:\n {2}cluster +lab, PostgreSQL of the hosts' Debian release \(15 on 12, 17 on 13\), synchronous replication\n {2}hosts +node1 10\.88\.213\.11\n/);
  await term.expect(/ {2}etcd +node1, node2, node3\n/);
  await term.expect(/ {2}client networks +10\.88\.213\.0\/24\n {2}apt proxy +http:\/\/10\.88\.213\.1:3142\n {2}host keys +3 of 4 confirmed \(node1, node2, node4\)/);
  assert.deepEqual(readdirSync(dir), ['home'], 'nothing written before the go-ahead');
  await term.answer(/Write these files\?/, ENTER);
  await run;

  const inv = await loadInventory(join(dir, 'inventory.yml'));
  assert.deepEqual(inv.hosts.map((h) => h.address), ['10.88.213.11', '10.88.213.12', '10.88.213.13', '10.88.213.14']);
  assert.equal(inv.repositoryHost?.name, 'node4');
  assert.equal(inv.patroni.synchronous_mode, true);
  assert.equal(inv.packages.apt_proxy, 'http://10.88.213.1:3142');
  assert.deepEqual(inv.patroni.pg_hba, ['host all all 10.88.213.0/24 scram-sha-256']);
  assert.deepEqual(inv.roles.etcd, ['node1', 'node2', 'node3']);
  assert.equal(inv.host('node1').ssh.privateKey, undefined, 'no key named: the agent, then ~/.ssh/id_*');
  assert.equal(statSync(join(dir, 'inventory.secrets.yml')).mode & 0o777, 0o600);
  const kh = readFileSync(join(dir, 'known_hosts'), 'utf8').trim().split('\n');
  assert.deepEqual(kh.map((l) => l.split(' ')[0]), ['10.88.213.11', '10.88.213.12', '10.88.213.14']);
  assert.equal(kh[0], `10.88.213.11 ssh-ed25519 ${fakeKey('10.88.213.11').toString('base64')}`);
  assert.match(out(), /pgha validate -i inventory\.yml/);
  assert.match(out(), /--accept-new-host-keys/);
  for (const p of secretValues(inv.secrets)) assert.ok(!term.text.includes(p), 'a password was shown');
  assert.deepEqual(readdirSync(dir).sort(), ['home', 'inventory.secrets.yml', 'inventory.yml', 'known_hosts']);
});

test('wizard: a shared repository path; nothing probed when SSH testing is declined', async () => {
  const { dir, term, deps } = setup();
  let probed = false;
  deps.probe = { fetchKey: async () => ((probed = true), Buffer.alloc(0)), login: async () => {} };
  const run = runInit({}, deps);
  await term.answer(/Cluster name/, ENTER);
  await term.answer(/PostgreSQL major version/, ENTER);
  for (const i of [1, 2, 3]) {
    await term.answer(new RegExp(`Host ${i} name`), `db${i}` + ENTER);
    await term.answer(new RegExp(`db${i} address`), `db${i}.example.internal` + ENTER);
  }
  await term.answer(/Host 4 name/, ENTER);
  for (const q of [/SSH user/, /SSH port/, /SSH private key/, /Hosts running etcd/, /Hosts running PostgreSQL/, /Hosts running HAProxy/]) {
    await term.answer(q, ENTER);
  }
  await term.answer(/Where does the pgBackRest backup repository live/, DOWN + ENTER);
  await term.answer(/Shared repository path/, ENTER);
  await term.answer(/Synchronous replication/, ENTER);
  await term.answer(/Use the default ports/, ENTER);
  await term.answer(/Client networks/, ENTER);
  await term.answer(/APT proxy/, ENTER);
  await term.answer(/Test SSH to each host now/, 'n' + ENTER);
  await term.expect(/ {2}host keys +not checked \(apply --accept-new-host-keys records them\)/);
  await term.answer(/Write these files\?/, ENTER);
  await run;
  assert.equal(probed, false);
  const inv = await loadInventory(join(dir, 'inventory.yml'));
  assert.equal(inv.cluster.name, 'main');
  assert.equal(inv.pgbackrest.repository.type, 'shared');
  assert.equal(inv.pgbackrest.repository.path, DEFAULTS.sharedRepoPath);
  assert.deepEqual(readdirSync(dir).sort(), ['home', 'inventory.secrets.yml', 'inventory.yml']);
});

test('wizard: no host answers over SSH: said in apply\'s words, and nothing written unless told to', async () => {
  const { dir, term, deps } = setup();
  deps.probe = {
    fetchKey: async (address) => {
      throw new PghaError(`cannot connect to ${address}:22: connection refused (is sshd running and listening on port 22?)`);
    },
    login: async () => assert.fail('no login without a key'),
  };
  const answerAll = async (run: Promise<void>, write: string) => {
    await term.answer(/Cluster name/, ENTER);
    await term.answer(/PostgreSQL major version/, ENTER);
    for (const i of [1, 2, 3]) {
      await term.answer(new RegExp(`Host ${i} name`), `db${i}` + ENTER);
      await term.answer(new RegExp(`db${i} address`), `10.0.0.${i}` + ENTER);
    }
    await term.answer(/Host 4 name/, ENTER);
    for (const q of [/SSH user/, /SSH port/, /SSH private key/, /Hosts running etcd/, /Hosts running PostgreSQL/, /Hosts running HAProxy/]) await term.answer(q, ENTER);
    await term.answer(/Where does the pgBackRest backup repository live/, DOWN + ENTER);
    for (const q of [/Shared repository path/, /Synchronous replication/, /Use the default ports/, /Client networks/, /APT proxy/, /Test SSH to each host now/]) await term.answer(q, ENTER);
    await term.expect(/db1: cannot connect to 10\.0\.0\.1:22: connection refused \(is sshd running and listening on port 22\?\)/);
    await term.expect(/No host answered over SSH: check the addresses, the SSH port/);
    await term.answer(/Write the files anyway\? \(y\/N\)/, write + ENTER);
    return run;
  };
  await assert.rejects(answerAll(runInit({}, deps), ''), (err: unknown) => err instanceof PghaError && err.exitCode === 1 && /no host answered over SSH/.test(err.message));
  assert.deepEqual(readdirSync(dir), ['home']);
  await answerAll(runInit({}, deps), 'y');
  assert.deepEqual(readdirSync(dir).sort(), ['home', 'inventory.secrets.yml', 'inventory.yml']);
});

test('wizard: Ctrl+C mid-way writes nothing and exits 130', async () => {
  const { dir, term, deps } = setup();
  const run = runInit({}, deps);
  await term.answer(/Cluster name/, 'lab' + ENTER);
  await term.answer(/PostgreSQL major version/, ENTER);
  await term.answer(/Host 1 name/, 'node1' + ENTER);
  await term.answer(/node1 address/, '\x03');
  await assert.rejects(run, (err: unknown) => err instanceof PghaError && err.exitCode === EXIT.interrupted);
  assert.deepEqual(readdirSync(dir), ['home']);
});

test('wizard: an existing inventory is kept when the user declines to overwrite it', async () => {
  const { dir, term, deps } = setup();
  writeFileSync(join(dir, 'inventory.yml'), 'mine\n');
  const run = runInit({}, deps);
  await term.answer(/inventory\.yml already exists\. Overwrite it\?/, ENTER);
  await assert.rejects(run, (err: unknown) => err instanceof PghaError && err.exitCode === EXIT.badInput);
  assert.equal(readFileSync(join(dir, 'inventory.yml'), 'utf8'), 'mine\n');
  assert.deepEqual(readdirSync(dir).sort(), ['home', 'inventory.yml']);
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
  // A checkbox per host, the first three checked: space unchecks node1, and checks node4 three lines down.
  await t.answer(/Hosts running etcd/, ' ', 'Down', 'Down', 'Down', ' ', 'Enter');
  await t.answer(/Hosts running PostgreSQL/, 'Enter');
  await t.answer(/Hosts running HAProxy/, 'Enter');
  await t.answer(/Where does the pgBackRest backup repository live/, 'Enter');
  await t.answer(/Repository host/, 'Enter');
  await t.answer(/Synchronous replication/, 'Enter');
  await t.answer(/Use the default ports \(PostgreSQL 5432, Patroni REST API 8008, etcd client 2379, etcd peer 2380/, 'Enter');
  await t.answer(/Client networks/, 'Enter');
  await t.answer(/APT proxy/, 'Enter');
  await t.answer(/Test SSH to each host now/, 'n', 'Enter');
  await t.answer(/Write these files\?/, 'Enter');
  await t.waitFor(/EXIT=0/);
  const screen = t.screen();
  assert.match(screen, /pgha validate -i inventory\.yml/);

  assert.deepEqual(readdirSync(t.work).sort(), ['inventory.secrets.yml', 'inventory.yml']);
  assert.equal(statSync(join(t.work, 'inventory.secrets.yml')).mode & 0o777, 0o600);
  const v = pgha(t.work, 'validate', '-i', 'inventory.yml');
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const inv = readFileSync(join(t.work, 'inventory.yml'), 'utf8');
  assert.match(inv, /^ {2}etcd: \[node2, node3, node4\]/m);
  assert.match(inv, /^ {2}postgres: \[node1, node2, node3\]/m);
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

