import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { loadInventory } from '../../src/inventory/index.js';
import { EXIT, PghaError } from '../../src/errors.js';
import { answerProblems, DEFAULTS, type InitAnswers } from '../../src/init/answers.js';
import { answersFromFlags } from '../../src/init/flags.js';
import { fingerprint, type HostProbe } from '../../src/init/hostkeys.js';
import { runInit } from '../../src/init/index.js';
import { generatePassword, generateSecrets, renderInventory, renderSecrets } from '../../src/init/render.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'pgha-init-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const lab: InitAnswers = {
  clusterName: 'lab',
  postgresVersion: 15,
  hosts: [1, 2, 3, 4].map((i) => ({ name: `node${i}`, address: `10.88.213.${10 + i}` })),
  ssh: { user: 'admin', port: 22, privateKey: '~/.ssh/id_ed25519' },
  roles: { etcd: ['node1', 'node2', 'node3'], postgres: ['node1', 'node2', 'node3'], haproxy: ['node1', 'node2', 'node3'] },
  repository: { type: 'host', host: 'node4' },
  synchronousMode: false,
  ports: { ...DEFAULTS.ports },
  aptProxy: null,
};

async function renderAndLoad(a: InitAnswers) {
  const dir = tmp();
  writeFileSync(join(dir, 'inventory.yml'), renderInventory(a, { schema: 'schema.json', secrets: 's.yml', knownHosts: 'known_hosts' }));
  writeFileSync(join(dir, 's.yml'), renderSecrets(a.clusterName, generateSecrets()), { mode: 0o600 });
  return loadInventory(join(dir, 'inventory.yml'));
}

test('rendered inventory loads: dedicated repository host', async () => {
  assert.deepEqual(answerProblems(lab), []);
  const inv = await renderAndLoad(lab);
  assert.equal(inv.cluster.name, 'lab');
  assert.equal(inv.repositoryHost?.name, 'node4');
  assert.deepEqual(inv.roles.etcd, ['node1', 'node2', 'node3']);
  assert.equal(inv.hosts.find((h) => h.name === 'node2')?.address, '10.88.213.12');
  assert.equal(inv.secrets?.superuser_password.length, 32);
});

test('rendered inventory loads: shared repository, sync, apt proxy, other ports and version', async () => {
  const a: InitAnswers = {
    ...lab,
    postgresVersion: 16,
    hosts: lab.hosts.slice(0, 3),
    repository: { type: 'shared', path: '/mnt/backups' },
    synchronousMode: true,
    ports: { ...lab.ports, postgres: 6432 },
    aptProxy: 'http://10.88.213.1:3142',
  };
  const inv = await renderAndLoad(a);
  assert.equal(inv.pgbackrest.repository.type, 'shared');
  assert.equal(inv.pgbackrest.repository.path, '/mnt/backups');
  assert.equal(inv.repositoryHost, undefined);
  assert.equal(inv.patroni.synchronous_mode, true);
  assert.equal(inv.patroni.postgres_port, 6432);
  assert.equal(inv.packages.apt_proxy, 'http://10.88.213.1:3142');
  assert.equal(inv.packages.postgresql_apt_repository, true);
});

test('generated passwords are long, URL-safe and distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = generatePassword();
    assert.match(p, /^[A-Za-z0-9_-]{32}$/);
    seen.add(p);
  }
  assert.equal(seen.size, 200);
});

test('flags: every missing required flag is named', () => {
  const r = answersFromFlags({});
  assert.equal(r.problems.length, 3);
  assert.match(r.problems.join('\n'), /--name/);
  assert.match(r.problems.join('\n'), /--host/);
  assert.match(r.problems.join('\n'), /--repo-host NAME or --repo-path/);
});

test('flags: role defaults skip the repository host; bad values are reported', () => {
  const ok = answersFromFlags({ name: 'x', host: ['r=10.0.0.9', 'a=10.0.0.1', 'b=10.0.0.2', 'c=10.0.0.3'], repoHost: 'r' });
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.answers.roles.postgres, ['a', 'b', 'c']);
  const bad = answersFromFlags({ name: 'x', host: ['a=10.0.0.1', 'a=10.0.0.2', 'B=1.2.3.999'], repoPath: 'rel', etcd: 'a,B' });
  const text = bad.problems.join('\n');
  assert.match(text, /host "a" is already listed/);
  assert.match(text, /"B" is not a valid host name/);
  assert.match(text, /"1.2.3.999" is not an IP address/);
  assert.match(text, /etcd: needs an odd number/);
  assert.match(text, /must be absolute/);
});

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
  await term.answer(/SSH private key/, ENTER);
  await term.answer(/Hosts running etcd/, CLEAR + 'node1,node2,node3,node4' + ENTER);
  await term.answer(/etcd: needs an odd number of members, at least 3 \(got 4\)/, CLEAR + 'node1,node2,node3' + ENTER);
  await term.answer(/Hosts running PostgreSQL/, ENTER);
  await term.answer(/Hosts running HAProxy/, ENTER);
  await term.answer(/Where does the pgBackRest backup repository live/, ENTER);
  await term.answer(/Repository host/, ENTER); // node4, the one host without postgres
  await term.answer(/Synchronous replication/, 'y' + ENTER);
  await term.answer(/Use the default ports/, ENTER);
  await term.answer(/APT proxy/, 'http://10.88.213.1:3142' + ENTER);
  await term.answer(/Test SSH to each host now/, ENTER);
  for (const [i, n] of ['node1', 'node2', 'node3', 'node4'].entries()) {
    await term.expect(new RegExp(`${n} \\(10\\.88\\.213\\.1${i + 1}:22\\) host key: ssh-ed25519 ${fingerprint(fakeKey(`10.88.213.1${i + 1}`)).replace(/[+/]/g, '\\$&')}`));
    // node3's key is refused: it must not be recorded.
    await term.answer(new RegExp(`Is this ${n}'s host key\\?`), (n === 'node3' ? 'n' : 'y') + ENTER);
  }
  await run;

  const inv = await loadInventory(join(dir, 'inventory.yml'));
  assert.deepEqual(inv.hosts.map((h) => h.address), ['10.88.213.11', '10.88.213.12', '10.88.213.13', '10.88.213.14']);
  assert.equal(inv.repositoryHost?.name, 'node4');
  assert.equal(inv.patroni.synchronous_mode, true);
  assert.equal(inv.packages.apt_proxy, 'http://10.88.213.1:3142');
  assert.equal(statSync(join(dir, 'inventory.secrets.yml')).mode & 0o777, 0o600);
  const kh = readFileSync(join(dir, 'known_hosts'), 'utf8').trim().split('\n');
  assert.deepEqual(kh.map((l) => l.split(' ')[0]), ['10.88.213.11', '10.88.213.12', '10.88.213.14']);
  assert.equal(kh[0], `10.88.213.11 ssh-ed25519 ${fakeKey('10.88.213.11').toString('base64')}`);
  assert.match(out(), /pgha validate -i inventory\.yml/);
  assert.match(out(), /--accept-new-host-keys/);
  for (const p of Object.values(inv.secrets ?? {})) assert.ok(!term.text.includes(p), 'a password was shown');
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
  await term.answer(/APT proxy/, ENTER);
  await term.answer(/Test SSH to each host now/, 'n' + ENTER);
  await run;
  assert.equal(probed, false);
  const inv = await loadInventory(join(dir, 'inventory.yml'));
  assert.equal(inv.cluster.name, 'main');
  assert.equal(inv.pgbackrest.repository.type, 'shared');
  assert.equal(inv.pgbackrest.repository.path, DEFAULTS.sharedRepoPath);
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

test('a failed validation of the staged files names the target files, never their (removed) temp names', async () => {
  const dir = tmp();
  const flags = { name: 'lab', host: lab.hosts.map((h) => `${h.name}=${h.address}`), repoHost: 'node4', output: 'inv.yml' };
  const err = await runInit(flags, {
    tty: false,
    out: () => {},
    cwd: dir,
    home: dir,
    // As loadInventory reports: the file it was given, located.
    validate: async (file: string) => {
      throw new PghaError(`${file}: 1 problem`, EXIT.badInput, [`${file}:3:9: cluster.name: got "x", expected letters`]);
    },
  }).then(
    () => assert.fail('no error'),
    (e: PghaError) => e,
  );
  assert.equal(err.message, 'init: the generated inventory does not validate (a bug in pgha init): inv.yml: 1 problem');
  assert.deepEqual(err.lines, ['inv.yml:3:9: cluster.name: got "x", expected letters']);
  assert.deepEqual(readdirSync(dir), [], 'nothing written, no temp file left');
});
