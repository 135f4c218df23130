// The container lab itself: machines, access, packages through the proxy, isolation, fault
// controls, teardown. Starts from a lab taken down (node's test runner orders files by name, so
// cluster tests may have run before) and leaves it DOWN (other test files call up() themselves).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import * as lab from './lab.js';

const cfg = lab.labConfig();
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function sh(name: string, cmd: string): Promise<lab.Result> {
  return lab.ssh(name, cmd, { timeoutMs: 120_000 });
}
async function ok(name: string, cmd: string): Promise<string> {
  const r = await sh(name, cmd);
  assert.equal(r.code, 0, `${name}: ${cmd} -> exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** `npm run lab -- ARGS` as an operator runs it (test/lab/cli.ts). */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['--import', 'tsx', 'test/lab/cli.ts', ...args], { cwd: lab.REPO_ROOT, encoding: 'utf8' });
}
const linkOf = (name: string) => lab.machineLink(name);

before(async () => {
  await lab.down();
});

after(async () => {
  await lab.down();
});

test('up 4 boots node1..node4, each answering ssh', { timeout: 600_000 }, async () => {
  await lab.up(4);
  assert.equal(lab.isUp(4), true);
  const st = lab.status();
  assert.deepEqual(st.machines.map((m) => [m.name, m.address, m.running, m.linkUp]), [
    // nodeK is .(10+K) of the subnet (10.88.213.0/24 by default)
    ['node1', cfg.subnet.replace(/\.0\/\d+$/, '.11'), true, true],
    ['node2', cfg.subnet.replace(/\.0\/\d+$/, '.12'), true, true],
    ['node3', cfg.subnet.replace(/\.0\/\d+$/, '.13'), true, true],
    ['node4', cfg.subnet.replace(/\.0\/\d+$/, '.14'), true, true],
  ].map(([n, a, r, l]) => [n, cfg.isDefault ? a : lab.machineAddress(n as string), r, l]));
  assert.ok(st.proxy, 'the apt proxy runs');
});

test('up again is a no-op: the same machines keep running', { timeout: 120_000 }, async () => {
  const before = lab.status().machines.map((m) => m.pid);
  const secrets = fs.readFileSync(cfg.secretsPath, 'utf8');
  await lab.up(4);
  assert.deepEqual(lab.status().machines.map((m) => m.pid), before);
  assert.equal(fs.readFileSync(cfg.secretsPath, 'utf8'), secrets, 'secrets are kept');
});

test('ssh as admin works and sudo needs no password', async () => {
  for (const name of lab.machineNames(4)) {
    assert.equal(await ok(name, 'id -un; hostname; sudo -n id -u'), `admin\n${name}\n0\n`);
  }
});

test('each machine has its own host keys, recorded in the lab known_hosts by address and name', async () => {
  const known = fs.readFileSync(cfg.knownHostsPath, 'utf8');
  const keys = new Set<string>();
  for (const name of lab.machineNames(4)) {
    const pub = (await ok(name, 'cat /etc/ssh/ssh_host_ed25519_key.pub')).trim().split(/\s+/).slice(0, 2).join(' ');
    assert.ok(known.includes(`${lab.machineAddress(name)},${name} ${pub}\n`), `${name}'s key in known_hosts`);
    keys.add(pub);
  }
  assert.equal(keys.size, 4, 'no two machines share a host key');
  // No host key comes from the base image.
  assert.deepEqual(fs.readdirSync(path.join(cfg.dir, 'base/etc/ssh')).filter((f) => f.startsWith('ssh_host_')), []);
});

test('machines ran the shared vagrant/prepare-host.sh and have their own /etc/hosts', async () => {
  assert.equal(lab.PREPARE_HOST_SCRIPT, path.join(lab.REPO_ROOT, 'vagrant/prepare-host.sh'));
  const repoSum = sha256(fs.readFileSync(lab.PREPARE_HOST_SCRIPT));
  const hosts = await ok('node2', `sha256sum ${lab.PREPARE_HOST_IN_MACHINE} | cut -d' ' -f1; cat /etc/hosts; sudo -n cat /etc/sudoers.d/90-pgha-admin`);
  const [sum, ...rest] = hosts.trim().split('\n');
  assert.equal(sum, repoSum, 'the script the machine ran is the repository copy');
  assert.ok(rest.includes('127.0.1.1 node2'));
  for (const other of ['node1', 'node3', 'node4']) assert.ok(rest.includes(`${lab.machineAddress(other)} ${other}`));
  assert.ok(rest.includes('admin ALL=(ALL) NOPASSWD:ALL'));
});

test('lab secrets: mode 0600, four strong passwords, kept across up', () => {
  const st = fs.statSync(cfg.secretsPath);
  assert.equal(st.mode & 0o777, 0o600);
  const s = parse(fs.readFileSync(cfg.secretsPath, 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(s).sort(), ['replication_password', 'restapi_password', 'rewind_password', 'superuser_password']);
  for (const v of Object.values(s)) assert.ok(typeof v === 'string' && v.length >= 24);
  assert.equal(new Set(Object.values(s)).size, 4);
});

test('the base carries no cluster software and no apt proxy setting', async () => {
  const r = await sh('node1', "dpkg-query -W -f='${Package} ${Status}\\n' 'postgresql*' patroni 'etcd*' haproxy pgbackrest 2>/dev/null | grep ' installed$' || true; apt-config dump | grep -i proxy || true");
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), '');
});

test('an apt install works through the host proxy', { timeout: 300_000 }, async () => {
  const proxy = `-o Acquire::http::Proxy=${cfg.proxyUrl}`;
  const out = await ok('node4', `sudo -n apt-get ${proxy} -qq update && sudo -n DEBIAN_FRONTEND=noninteractive apt-get ${proxy} -qq -y install hello >/dev/null && hello`);
  assert.equal(out.trim(), 'Hello, world!');
});

test('a machine has no route out: no default route, outside addresses unreachable', async () => {
  // `ip route get` only asks the routing table; no packet is sent.
  const r = await sh('node1', 'ip route show default; ip -6 route show default; ip route get 198.51.100.7 2>&1; echo "exit=$?"; ip route get ' + cfg.hostAddress);
  assert.equal(r.code, 0);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /Network is unreachable/);
  assert.equal(lines[1], 'exit=2');
  assert.match(lines[2], new RegExp(`^${cfg.hostAddress.replace(/\./g, '\\.')} dev host0 `));
});

test('partition cuts a machine off; heal restores it', { timeout: 60_000 }, async () => {
  const ping = `ping -c1 -W1 ${lab.machineAddress('node1')} >/dev/null 2>&1; echo $?`;
  assert.equal((await ok('node2', ping)).trim(), '0');
  const cut = cli(['partition', 'node1']);
  assert.equal(cut.status, 0, cut.stderr);
  assert.equal(cut.stdout, `node1 partitioned: its link ${linkOf('node1')} is down (nothing reaches it; it reaches nothing)\n`);
  try {
    assert.equal(lab.status().machines.find((m) => m.name === 'node1')?.linkUp, false);
    assert.notEqual((await ok('node2', ping)).trim(), '0', 'node1 unreachable while partitioned');
    assert.notEqual((await lab.ssh('node1', 'true', { timeoutMs: 20_000 })).code, 0);
  } finally {
    const healed = cli(['heal', 'node1']);
    assert.equal(healed.status, 0, healed.stderr);
    assert.equal(healed.stdout, `node1 healed: its link ${linkOf('node1')} is up and on bridge ${cfg.bridge} again\n`);
  }
  assert.equal((await ok('node2', `ping -c1 -W3 ${lab.machineAddress('node1')} >/dev/null 2>&1; echo $?`)).trim(), '0');
  assert.equal(await ok('node1', 'hostname'), 'node1\n');
});

test('a data disk of its own: filled to the last block, slowed, cleared; the others untouched', { timeout: 120_000 }, async () => {
  const avail = async (name: string) => Number((await ok(name, 'df --output=avail -B1 /var/lib/postgresql | tail -1')).trim());
  assert.equal((await ok('node2', 'findmnt -no FSTYPE /var/lib/postgresql')).trim(), 'ext4');
  const before = await avail('node3');
  const filled = cli(['disk', 'node2', 'fill']);
  assert.equal(filled.status, 0, filled.stderr);
  assert.match(filled.stdout, /^node2 data disk: \d+ MiB, 0 MiB free \(\d+ MiB of filler\), not throttled\n$/);
  try {
    assert.ok((await avail('node2')) < 1024 * 1024, 'full inside the machine');
    assert.match((await sh('node2', 'sudo -n dd if=/dev/zero of=/var/lib/postgresql/probe bs=8k count=1 conv=fsync 2>&1')).stdout, /No space left on device/);
    assert.equal(await avail('node3'), before, "node3's data disk is not node2's");
    const slow = cli(['disk', 'node2', 'slow', '5']);
    assert.equal(slow.status, 0, slow.stderr);
    assert.match(slow.stdout, /throttled to 5 IOPS\n$/);
    cli(['disk', 'node2', 'clear']);
    cli(['disk', 'node2', 'slow', '5']);
    // 10 synchronous writes at 5 IOPS (each at least one I/O): about 2 s at the very least.
    const t0 = Date.now();
    await ok('node2', 'sudo -n dd if=/dev/zero of=/var/lib/postgresql/probe bs=4k count=10 oflag=dsync status=none');
    assert.ok(Date.now() - t0 >= 1500, `10 synchronous writes took ${Date.now() - t0} ms at 5 IOPS`);
  } finally {
    const cleared = cli(['disk', 'node2', 'clear']);
    assert.equal(cleared.status, 0, cleared.stderr);
    assert.match(cleared.stdout, /^node2 data disk: \d+ MiB, \d+ MiB free, not throttled\n$/);
    await ok('node2', 'sudo -n rm -f /var/lib/postgresql/probe');
  }
  assert.ok((await avail('node2')) > 7 * 2 ** 30, 'the filler is gone');
  assert.equal(cli(['disk', 'node2', 'spin']).status, 1);
});

test('netem arguments: netem\'s own syntax, units optional; wrong words say what was expected', () => {
  assert.deepEqual(lab.parseNetem(['delay', '200ms', '100ms', 'loss', '5%']), { delayMs: 200, jitterMs: 100, lossPct: 5 });
  assert.deepEqual(lab.parseNetem(['loss', '0.5']), { delayMs: 0, jitterMs: 0, lossPct: 0.5 });
  assert.deepEqual(lab.parseNetem(['delay', '50']), { delayMs: 50, jitterMs: 0, lossPct: 0 });
  assert.throws(() => lab.parseNetem(['delay', '10ms', '20ms']), /jitter 20 ms is larger than the delay 10 ms/);
  assert.throws(() => lab.parseNetem(['loss', '120%']), /loss must be a percentage from 0 to 100/);
  assert.throws(() => lab.parseNetem(['rate', '1mbit']), /unknown word "rate": expected delay MS \[JITTER_MS\], loss PCT% or clear/);
  assert.throws(() => lab.parseNetem([]), /netem needs/);
});

/** TCP connect times (ms) from the host to a machine's sshd: one round trip, so the machine's added delay. */
async function connectTimes(name: string, n: number, timeoutMs = 5000): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: lab.machineAddress(name), port: 22 });
      s.setTimeout(timeoutMs, () => {
        s.destroy();
        reject(new Error('connect timed out'));
      });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
    });
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('netem delays a machine\'s link (round trips measured), with jitter, and clear removes it', { timeout: 120_000 }, async () => {
  assert.ok(median(await connectTimes('node1', 10)) < 20, 'an undegraded link answers fast');
  const set = cli(['netem', 'node1', 'delay', '200ms']);
  assert.equal(set.status, 0, set.stderr);
  assert.equal(set.stdout, `node1: delay 200ms (outgoing) on its link ${linkOf('node1')} (clear with: netem node1 clear)\n`);
  try {
    const plain = await connectTimes('node1', 10);
    assert.ok(median(plain) > 160 && median(plain) < 240, `200 ms within 20%: ${plain.map(Math.round).join(' ')}`);
    assert.match(cli(['status']).stdout, /node1 .* netem: delay 200ms \(outgoing\)\n/);
    // The issue's own syntax: delay with jitter, and loss.
    const jitter = cli(['netem', 'node1', 'delay', '200ms', '100ms', 'loss', '0%']);
    assert.equal(jitter.status, 0, jitter.stderr);
    const times = await connectTimes('node1', 20);
    assert.ok(Math.min(...times) > 80 && Math.max(...times) < 360, `200 +- 100 ms: ${times.map(Math.round).join(' ')}`);
    assert.ok(Math.max(...times) - Math.min(...times) > 60, `jitter spreads round trips: ${times.map(Math.round).join(' ')}`);
    // Each handshake waits for one delayed packet, drawn uniformly from 100-300 ms: the median of 20
    // has a standard deviation of about 16 ms, so 200 +- 60 ms (3.7 of them; the 20% bound, 2.5 of them, failed once).
    assert.ok(median(times) > 140 && median(times) < 260, `median 200 ms within 30%: ${times.map(Math.round).join(' ')}`);
  } finally {
    const cleared = cli(['netem', 'node1', 'clear']);
    assert.equal(cleared.status, 0, cleared.stderr);
    assert.equal(cleared.stdout, 'node1: netem cleared, its link is undegraded\n');
  }
  assert.ok(median(await connectTimes('node1', 10)) < 20, 'cleared: fast again');
  assert.doesNotMatch(cli(['status']).stdout, /netem/);
  // Bad arguments say what was expected and change nothing.
  const bad = cli(['netem', 'node1', 'delay', 'soon']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'lab: netem: delay must be milliseconds (e.g. 200ms), got "soon"\n');
});

test('netem loss drops packets at random in both directions; heal clears it', { timeout: 120_000 }, async () => {
  // As root, ping may send every 50 ms (a user's least interval is 200 ms): 40 round trips in 2 s.
  const pings = `sudo ping -q -c 40 -i 0.05 -W 1 ${lab.machineAddress('node1')} | sed -n 's/.* \\([0-9.]*\\)% packet loss.*/\\1/p'`;
  assert.equal((await ok('node2', pings)).trim(), '0');
  const set = cli(['netem', 'node1', 'loss', '50%']);
  assert.equal(set.status, 0, set.stderr);
  let lost: number;
  try {
    // Each round trip crosses node1's link twice: 1 - 0.5 * 0.5 = 75% expected.
    lost = Number((await ok('node2', pings)).trim());
  } finally {
    lab.heal('node1');
  }
  assert.ok(lost >= 50 && lost <= 95, `50% each way loses about 75% of round trips: ${lost}%`);
  assert.equal((await ok('node2', pings)).trim(), '0', 'heal removed the loss');
});

test('stall takes the link down for that long, then it answers again', { timeout: 60_000 }, async () => {
  const t0 = Date.now();
  const stall = lab.stall('node1', 4);
  await new Promise((r) => setTimeout(r, 1000));
  await assert.rejects(connectTimes('node1', 1, 1500), 'no answer while stalled');
  await stall;
  const took = (Date.now() - t0) / 1000;
  assert.ok(took >= 4 && took < 6, `stalled ${took} s`);
  assert.equal(lab.status().machines.find((m) => m.name === 'node1')?.linkUp, true);
  assert.ok((await connectTimes('node1', 3)).every((t) => t < 1000), 'answers again at once');
  const out = cli(['stall', 'node1', '1']);
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout, `node1: link ${linkOf('node1')} down for 1 s ...\nnode1: link up again after 1 s\n`);
});

test('poweroff kills the machine at once; start boots it with its disk intact', { timeout: 120_000 }, async () => {
  await ok('node3', 'echo survives > /home/admin/marker && echo survives | sudo -n tee /var/lib/postgresql/marker >/dev/null');
  const pid = lab.status().machines.find((m) => m.name === 'node3')?.pid;
  assert.ok(pid);
  const off = cli(['poweroff', 'node3']);
  assert.equal(off.status, 0, off.stderr);
  const init = Number(/^node3 powered off \(SIGKILL of its init, pid (\d+); no clean shutdown\)\n$/.exec(off.stdout)?.[1]);
  assert.ok(init > 0, off.stdout);
  assert.equal(fs.existsSync(`/proc/${init}`), false, 'the init it named is gone');
  assert.equal(fs.existsSync(`/proc/${pid}`) && !/\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), false);
  assert.equal(lab.status().machines.find((m) => m.name === 'node3')?.running, false);
  assert.equal(lab.isUp(4), false);
  assert.notEqual((await lab.ssh('node3', 'true', { timeoutMs: 20_000 })).code, 0);
  assert.equal(cli(['poweroff', 'node3']).stdout, 'node3 was not running: nothing to power off\n');
  const started = cli(['start', 'node3']);
  assert.equal(started.status, 0, started.stderr);
  assert.match(started.stdout, /^node3 started; answers ssh after \d+\.\d s\n$/);
  assert.equal(await ok('node3', 'cat /home/admin/marker /var/lib/postgresql/marker'), 'survives\nsurvives\n');
  assert.match(cli(['start', 'node3']).stdout, /^node3 was running already; answers ssh after \d+\.\d s\n$/);
  assert.equal(lab.isUp(4), true);
});

test('up 5 boots node5 beside the running machines; rebuild makes it a fresh machine: same name and address, empty disk, new host keys', { timeout: 300_000 }, async () => {
  const running = lab.status().machines.map((m) => m.pid);
  await lab.up(5);
  assert.deepEqual(lab.status().machines.slice(0, 4).map((m) => m.pid), running, 'node1..node4 kept running');
  assert.deepEqual(lab.status().machines[4].address, lab.machineAddress('node5'));
  assert.equal(lab.machineAddress('node5'), cfg.subnet.replace(/\.0\/\d+$/, '.15'));
  await ok('node5', 'echo gone > /home/admin/marker && echo gone | sudo -n tee /var/lib/postgresql/marker >/dev/null');
  const machineId = await ok('node5', 'cat /etc/machine-id');
  const oldKeys = lab.hostKeyFingerprints('node5');
  const known = fs.readFileSync(cfg.knownHostsPath, 'utf8');

  const r = cli(['rebuild', 'node5']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0], /^node5 rebuilt: an empty disk from the base image, new host keys, same name and address; answers ssh after \d+\.\d s$/);
  const newKeys = lab.hostKeyFingerprints('node5');
  assert.deepEqual(lines.slice(2, 2 + newKeys.length), newKeys.map((f) => `  ${f}`));
  assert.match(newKeys.join('\n'), /^256 SHA256:[A-Za-z0-9+/]{43} \(ED25519\)$/m);
  for (const k of newKeys) assert.ok(!oldKeys.includes(k), `${k} is new`);
  // The lab's known_hosts keeps the old keys (an operator's would): strict ssh refuses the machine now.
  assert.equal(fs.readFileSync(cfg.knownHostsPath, 'utf8'), known);
  const refused = await lab.ssh('node5', 'true', { timeoutMs: 20_000 });
  assert.equal(refused.code, 255);
  assert.match(refused.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  // Against its new keys: the same address answers, with an empty disk.
  const fresh = path.join(cfg.dir, 'known_hosts.test-node5');
  const keys = fs.readdirSync(path.join(cfg.dir, 'machines/node5/root/etc/ssh')).filter((f) => /^ssh_host_.*_key\.pub$/.test(f));
  fs.writeFileSync(fresh, keys.map((f) => `${lab.machineAddress('node5')} ${fs.readFileSync(path.join(cfg.dir, 'machines/node5/root/etc/ssh', f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')}\n`).join(''));
  try {
    const marker = await lab.ssh('node5', 'test -e /home/admin/marker || test -e /var/lib/postgresql/marker && echo there || echo gone; cat /etc/machine-id; hostname', { knownHostsPath: fresh, timeoutMs: 20_000 });
    assert.equal(marker.code, 0, marker.stderr);
    const [state, id, host] = marker.stdout.trim().split('\n');
    assert.equal(state, 'gone');
    assert.notEqual(id, machineId.trim());
    assert.equal(host, 'node5');
  } finally {
    fs.rmSync(fresh, { force: true });
  }
  // up records the keys it finds on the disks again.
  await lab.up(5);
  assert.equal(await ok('node5', 'hostname'), 'node5\n');
});

test('lab inventory: inventories/lab.yml matches the lab; a reconfigured lab gets an adjusted copy', () => {
  if (cfg.isDefault) assert.equal(lab.labInventoryPath(), path.join(lab.REPO_ROOT, 'inventories/lab.yml'));
  const inv = parse(fs.readFileSync(lab.labInventoryPath(), 'utf8'));
  for (const name of lab.machineNames(4)) assert.equal(inv.hosts[name].address, lab.machineAddress(name));
  assert.equal(inv.ssh.private_key, cfg.keyPath);
  assert.equal(inv.ssh.known_hosts, cfg.knownHostsPath);
  assert.equal(inv.secrets, cfg.secretsPath);
  assert.equal(inv.packages.apt_proxy, cfg.proxyUrl);

  const other = lab.labConfig({ PGHA_LAB_DIR: '/srv/lab2', PGHA_LAB_BRIDGE: 'labbr1', PGHA_LAB_SUBNET: '10.99.0.0/24' });
  assert.equal(other.isDefault, false);
  const copy = parse(lab.labInventoryText(other));
  assert.equal(copy.hosts.node3.address, '10.99.0.13');
  assert.equal(copy.ssh.private_key, '/srv/lab2/id_ed25519');
  assert.equal(copy.packages.apt_proxy, 'http://10.99.0.1:3142');
  assert.deepEqual(copy.patroni.pg_hba, ['host all all 10.99.0.0/24 scram-sha-256']);
});

test('pgha validate accepts inventories/lab.yml', () => {
  const r = spawnSync('npx', ['tsx', 'src/cli/main.ts', 'validate', '-i', 'inventories/lab.yml'], { cwd: lab.REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /lab\.yml: ok/);
});

test('down removes everything but the base, key and secrets; down again is a no-op', { timeout: 120_000 }, async () => {
  await lab.down();
  const nspawns = fs.readdirSync('/proc').filter((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith(`${cfg.dir}/`));
    } catch {
      return false;
    }
  });
  assert.deepEqual(nspawns, [], 'no process runs on the lab dir');
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]);
  assert.deepEqual(mounts.filter((m) => m?.startsWith(`${cfg.dir}/`)), []);
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
  assert.doesNotMatch(links, new RegExp(`: ${cfg.bridge}[:@]`));
  // This lab's machine links (another lab on another bridge may have its own).
  assert.deepEqual(lab.leftovers().links, []);
  assert.deepEqual(lab.leftovers(), { pids: [], mounts: [], links: [] });
  assert.equal(lab.status().proxy, null);
  assert.equal(lab.isUp(1), false);
  for (const f of ['base/etc/pgha-lab-base', 'id_ed25519', 'id_ed25519.pub', 'lab.secrets.yml']) {
    assert.ok(fs.existsSync(path.join(cfg.dir, f)), `${f} stays`);
  }
  await lab.down();
  assert.deepEqual(lab.leftovers(), { pids: [], mounts: [], links: [] });
});
