// `pgha init` without a terminal: answers from flags (all problems at once), the inventory and
// secrets it renders (they load as they are), and the real CLI writing them (never prompting).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../../../src/inventory/index.js';
import { EXIT, PghaError } from '../../../../src/errors.js';
import { runInit } from '../../../../src/flows/init/init.js';
import { answerProblems, DEFAULTS, type InitAnswers } from '../../../../src/flows/init/answers.js';
import { answersFromFlags } from '../../../../src/flows/init/flags.js';
import { generatePassword, generateSecrets, renderInventory, renderSecrets } from '../../../../src/flows/init/render.js';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const MAIN = join(ROOT, 'src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

function pgha(cwd: string, ...args: string[]) {
  // stdin is not a terminal here: init must never prompt.
  return spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

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
  clientNetworks: [],
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

test('flags set every port and client networks (a pg_hba rule each, and one per HAProxy host outside them)', async () => {
  const dir = tmp();
  const ports = ['--postgres-port', '6432', '--restapi-port', '8009', '--etcd-client-port', '2479', '--etcd-peer-port', '2480', '--primary-port', '6000', '--replicas-port', '6001', '--stats-port', '7001'];
  // node3 (an HAProxy host) is outside the client network: clients through it arrive from 10.88.214.13.
  const hosts = ['--host', 'node1=10.88.213.11', '--host', 'node2=10.88.213.12', '--host', 'node3=10.88.214.13', '--host', 'node4=10.88.213.14'];
  const r = pgha(dir, 'init', '--name', 'lab', '--repo-host', 'node4', ...hosts, ...ports, '--client-network', '10.88.213.0/24', '--client-network', '2001:db8::/64');
  assert.equal(r.status, 0, r.stderr);
  const inv = await loadInventory(join(dir, 'inventory.yml'));
  assert.deepEqual(
    [inv.patroni.postgres_port, inv.patroni.restapi_port, inv.etcd.client_port, inv.etcd.peer_port, inv.haproxy.primary_port, inv.haproxy.replicas_port, inv.haproxy.stats_port],
    [6432, 8009, 2479, 2480, 6000, 6001, 7001],
  );
  assert.deepEqual(inv.patroni.pg_hba, ['host all all 10.88.213.0/24 scram-sha-256', 'host all all 2001:db8::/64 scram-sha-256', 'host all all 10.88.214.13/32 scram-sha-256']);

  const bad = pgha(tmp(), 'init', ...LAB, '--client-network', '10.88.213.5/24', '--primary-port', '5432');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /"10\.88\.213\.5\/24": host bits set past \/24, expected a network in CIDR notation/);
  assert.match(bad.stderr, /ports: SSH and each service need their own port/);
});

test('paths are written as given: absolute stays absolute, relative is made relative to the inventory', () => {
  const dir = tmp();
  const elsewhere = tmp();
  const r = pgha(dir, 'init', ...LAB, '--output', 'clusters/lab.yml', '--known-hosts', join(elsewhere, 'kh'), '--secrets', 'clusters/private/lab.secrets.yml', '--ssh-key', '~/.ssh/lab_key');
  assert.equal(r.status, 0, r.stderr);
  const text = readFileSync(join(dir, 'clusters/lab.yml'), 'utf8');
  assert.match(text, new RegExp(`^ {2}known_hosts: ${join(elsewhere, 'kh').replace(/[/.]/g, '\\$&')} `, 'm'));
  assert.match(text, /^secrets: private\/lab\.secrets\.yml$/m);
  assert.match(text, /^ {2}private_key: ~\/\.ssh\/lab_key$/m);
  assert.equal(pgha(dir, 'validate', '-i', 'clusters/lab.yml').status, 0);
});

test('without --ssh-key no key is written (the agent, then ~/.ssh/id_*), said in a comment', () => {
  const dir = tmp();
  assert.equal(pgha(dir, 'init', ...LAB).status, 0);
  const text = readFileSync(join(dir, 'inventory.yml'), 'utf8');
  assert.doesNotMatch(text, /^ {2}private_key:/m);
  assert.match(text, /^ {2}# private_key: ~\/\.ssh\/id_ed25519 +# unset: ~\/\.ssh\/config's IdentityFile, else the ssh-agent/m);
});

test('next steps match the known_hosts file: keys already there need no --accept-new-host-keys', () => {
  const dir = tmp();
  const key = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]).toString('base64');
  writeFileSync(join(dir, 'known_hosts'), [1, 2, 3, 4].map((i) => `10.88.213.${10 + i} ssh-ed25519 ${key}\n`).join(''));
  const all = pgha(dir, 'init', ...LAB);
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, /^ {2}pgha apply -i inventory\.yml +\(every host key is in known_hosts\)$/m);
  assert.doesNotMatch(all.stdout, /accept-new-host-keys/);

  writeFileSync(join(dir, 'known_hosts'), `10.88.213.11 ssh-ed25519 ${key}\n`);
  const some = pgha(dir, 'init', ...LAB, '--force');
  assert.match(some.stdout, /^ {2}pgha apply -i inventory\.yml --accept-new-host-keys +\(records the host keys of node2, node3, node4, not in known_hosts yet\)$/m);
});

test('--scan-host-keys when no host answers: nothing written (exit 1), unless --write-anyway', async () => {
  const dir = tmp();
  const flags = { name: 'lab', host: lab.hosts.map((h) => `${h.name}=${h.address}`), repoHost: 'node4', scanHostKeys: true, yes: true };
  let out = '';
  const deps = {
    tty: false,
    out: (t: string) => void (out += t),
    cwd: dir,
    home: dir,
    probe: { fetchKey: async () => { throw new PghaError('cannot connect to 10.88.213.11:22: connection refused (is sshd running and listening on port 22?)'); }, login: async () => {} },
  };
  await assert.rejects(runInit(flags, deps), (e: PghaError) => e.exitCode === 1 && /no host answered over SSH, so nothing was written/.test(e.message));
  assert.match(out, /^node1 \(10\.88\.213\.11\): cannot read its host key: cannot connect to .*connection refused/m);
  assert.deepEqual(readdirSync(dir), []);
  await runInit({ ...flags, writeAnyway: true }, deps);
  assert.deepEqual(readdirSync(dir).sort(), ['inventory.secrets.yml', 'inventory.yml']);
});
