// The Vagrant lab stays in step with its inventory and with the container lab (no VMs are run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import * as lab from '../../lab/lab.js';

const ROOT = lab.REPO_ROOT;
const VAGRANTFILE = path.join(ROOT, 'vagrant/Vagrantfile');

interface VagrantMachine {
  name: string;
  hostname: string;
  addresses: string[];
  memory: Record<string, number>;
  provision: { type: string; path: string; args: string[] } | null;
}

/** The machines the Vagrantfile defines, read by loading it with a stub Vagrant (vagrant/print-machines.rb). */
function vagrantMachines(env: NodeJS.ProcessEnv = {}): { box: string; machines: VagrantMachine[] } {
  const r = spawnSync('ruby', [path.join(ROOT, 'vagrant/print-machines.rb'), VAGRANTFILE], {
    encoding: 'utf8',
    env: { ...process.env, PGHA_VAGRANT_REPO_HOST: '', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const inventory = parse(fs.readFileSync(path.join(ROOT, 'inventories/vagrant.yml'), 'utf8'));

test('ruby -c accepts the Vagrantfile', () => {
  const r = spawnSync('ruby', ['-c', VAGRANTFILE], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Syntax OK/);
});

test("the Vagrantfile's machines are inventories/vagrant.yml's hosts (names and addresses)", () => {
  const { box, machines } = vagrantMachines();
  assert.equal(box, 'debian/bookworm64');
  const fromVagrant = Object.fromEntries(machines.map((m) => [m.name, m.addresses]));
  const fromInventory = Object.fromEntries(
    Object.entries(inventory.hosts as Record<string, { address: string }>).map(([n, h]) => [n, [h.address]]),
  );
  assert.deepEqual(fromVagrant, fromInventory);
  for (const m of machines) assert.equal(m.hostname, m.name);
  // The fourth VM is the inventory's repository host; the other three its database hosts.
  assert.equal(inventory.roles.backup_repository, 'node4');
  assert.deepEqual(inventory.roles.postgres, ['node1', 'node2', 'node3']);
});

test('database VMs get 2 GiB on VirtualBox and libvirt; PGHA_VAGRANT_REPO_HOST=0 leaves out the repository host', () => {
  const { machines } = vagrantMachines();
  for (const m of machines.filter((m) => inventory.roles.postgres.includes(m.name))) {
    assert.deepEqual(m.memory, { virtualbox: 2048, libvirt: 2048 });
  }
  const three = vagrantMachines({ PGHA_VAGRANT_REPO_HOST: '0' }).machines.map((m) => m.name);
  assert.deepEqual(three, inventory.roles.postgres);
});

test('every VM is provisioned by the same prepare-host.sh the container lab runs, with the inventory user', () => {
  assert.equal(lab.PREPARE_HOST_SCRIPT, path.join(ROOT, 'vagrant/prepare-host.sh'));
  const { machines } = vagrantMachines();
  for (const m of machines) {
    assert.ok(m.provision, `${m.name} has a provisioner`);
    assert.equal(m.provision.type, 'shell');
    assert.equal(fs.realpathSync(m.provision.path), fs.realpathSync(lab.PREPARE_HOST_SCRIPT));
    const [user, , name, ...hosts] = m.provision.args;
    assert.equal(user, inventory.ssh.user);
    assert.equal(user, lab.LAB_USER);
    assert.equal(name, m.name);
    assert.deepEqual(hosts, machines.map((o) => `${o.name}=${o.addresses[0]}`));
  }
});

test('inventories/vagrant.yml passes pgha validate (with a secrets file as vagrant up writes it)', (t) => {
  const help = spawnSync('npx', ['tsx', 'src/cli/main.ts', '--help'], { cwd: ROOT, encoding: 'utf8' });
  if (!/\bvalidate\b/.test(help.stdout)) {
    t.skip('pgha has no validate command yet');
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgha-vagrant-'));
  try {
    fs.mkdirSync(path.join(tmp, 'inventories'));
    fs.mkdirSync(path.join(tmp, 'vagrant/.pgha'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'inventories/vagrant.yml'), path.join(tmp, 'inventories/vagrant.yml'));
    const secrets = ['superuser_password', 'replication_password', 'rewind_password', 'restapi_password']
      .map((k, i) => `${k}: test-password-${i}-abcdefghijklmnop\n`)
      .join('');
    fs.writeFileSync(path.join(tmp, inventory.secrets.replace('../', '')), secrets, { mode: 0o600 });
    const r = spawnSync('npx', ['tsx', path.join(ROOT, 'src/cli/main.ts'), 'validate', '-i', path.join(tmp, 'inventories/vagrant.yml')], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('prepare-host.sh is valid sh', () => {
  // Never run here: it rewrites /etc/hosts and adds a user on the machine it runs on.
  assert.equal(spawnSync('sh', ['-n', lab.PREPARE_HOST_SCRIPT]).status, 0);
});
