// The container lab: Debian 12 (or, with PGHA_LAB_RELEASE=trixie, Debian 13) machines
// (systemd-nspawn) with systemd, sshd and their own addresses on a private bridge, for tests that
// run pgha against real hosts. The host stays Debian 12 either way.
//
// API for other tests (stable; everything else in this file is internal):
//   labConfig()             paths, bridge, addresses, release (from PGHA_LAB_DIR, PGHA_LAB_BRIDGE,
//                           PGHA_LAB_SUBNET, PGHA_LAB_RELEASE)
//   up(n = 4)               boots node1..nodeN (idempotent) and waits until each answers ssh
//   down()                  stops everything and removes the machines' disks (base, keys, secrets stay)
//   isUp(n = 4)             true when node1..nodeN are running
//   ssh(name, cmd)          runs a shell command as admin -> {code, stdout, stderr}
//   partition(name) / heal(name)    cut / restore the machine's link (heal also clears netem)
//   netem(name, spec) / netemClear(name) / parseNetem(args)   a degraded link: delay, jitter, loss
//   stall(name, seconds)    the link down for that long, then up again
//   poweroff(name) / start(name)    power loss (SIGKILL of its init) / boot again, disk intact
//   rebuild(name)           a fresh machine under the same name and address: empty disk from the
//                           base, new host keys, booted (known_hosts keeps the old keys, as an operator's would)
//   labInventoryPath()      a pgha inventory describing this lab (inventories/lab.yml or an adjusted copy)
//   machineAddress(name), machineNames(n), status()
//   bastionOn() / bastionOff() / isolated()   the jump-host setup: node5 the only machine the host
//                           reaches over SSH (port 22 to the others refused on the host); opt-in
//   labBastionInventoryText(mutate?)   the lab inventory reaching its hosts through the bastion
// Everything here needs root on the host.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The host-preparation script shared with the Vagrant lab; run in every machine. */
export const PREPARE_HOST_SCRIPT = path.join(REPO_ROOT, 'vagrant/prepare-host.sh');
/** Where a machine keeps its copy of PREPARE_HOST_SCRIPT (the copy it ran). */
export const PREPARE_HOST_IN_MACHINE = '/usr/local/sbin/pgha-prepare-host.sh';
export const LAB_USER = 'admin';
export const DEFAULT_MACHINES = 4;
/** The jump host of bastionOn(): the machine after the default four, in no role of the cluster. */
export const BASTION = 'node5';
/** ip rule priorities of the bastion setup (host-wide table, so each rule names this lab's subnet). */
const BASTION_RULE_PREFS = { allow: 20000, deny: 20001 };

const DEFAULTS = { dir: '/var/lib/pgha-lab', bridge: 'pghabr0', subnet: '10.88.213.0/24', release: 'bookworm' };
/** The Debian releases the lab's machines can run (the host is Debian 12 either way). */
export const LAB_RELEASES = ['bookworm', 'trixie'] as const;
export type LabRelease = (typeof LAB_RELEASES)[number];
const RELEASE_LABEL: Record<LabRelease, string> = { bookworm: 'Debian 12 (bookworm)', trixie: 'Debian 13 (trixie)' };
const PROXY_PORT = 3142;
// Bump when the base image's contents change, so a cached older base is rebuilt.
const BASE_VERSION = '1';
const BASE_PACKAGES = [
  'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'iproute2', 'ca-certificates',
  'python3', 'sudo', 'curl', 'iputils-ping',
];
const HOST_PACKAGES = ['systemd-container', 'debootstrap', 'apt-cacher-ng', 'iproute2', 'openssh-client', 'nftables', 'iptables', 'python3'];

export interface LabConfig {
  dir: string;
  bridge: string;
  subnet: string;
  prefixLength: number;
  hostAddress: string;
  proxyUrl: string;
  user: string;
  keyPath: string;
  knownHostsPath: string;
  secretsPath: string;
  /** Dir, bridge and subnet are the defaults (the release may differ). */
  isDefault: boolean;
  /** The machines' Debian release (PGHA_LAB_RELEASE; each has its own cached base image). */
  release: LabRelease;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface MachineStatus {
  name: string;
  address: string;
  running: boolean;
  pid: number | null;
  linkUp: boolean | null;
  /** netem shaping on its link (null: none). */
  netem: NetemSpec | null;
  /** The Debian release its disk was made from. */
  release: LabRelease | null;
}

// ---------------------------------------------------------------- configuration

function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}
function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function labConfig(env: NodeJS.ProcessEnv = process.env): LabConfig {
  const dir = path.resolve(env.PGHA_LAB_DIR || DEFAULTS.dir);
  const bridge = env.PGHA_LAB_BRIDGE || DEFAULTS.bridge;
  const subnet = env.PGHA_LAB_SUBNET || DEFAULTS.subnet;
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(subnet);
  if (!m || Number(m[2]) < 8 || Number(m[2]) > 24) {
    throw new Error(`PGHA_LAB_SUBNET must be an IPv4 network with a prefix of /8 to /24, e.g. ${DEFAULTS.subnet}`);
  }
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge)) throw new Error('PGHA_LAB_BRIDGE must be a valid interface name');
  const release = (env.PGHA_LAB_RELEASE || DEFAULTS.release) as LabRelease;
  if (!LAB_RELEASES.includes(release)) throw new Error(`PGHA_LAB_RELEASE must be one of ${LAB_RELEASES.join(', ')}, got ${JSON.stringify(env.PGHA_LAB_RELEASE)}`);
  const prefixLength = Number(m[2]);
  const network = (ipToInt(m[1]) & (0xffffffff << (32 - prefixLength))) >>> 0;
  const hostAddress = intToIp(network + 1);
  return {
    dir,
    bridge,
    subnet: `${intToIp(network)}/${prefixLength}`,
    prefixLength,
    hostAddress,
    proxyUrl: `http://${hostAddress}:${PROXY_PORT}`,
    user: LAB_USER,
    keyPath: path.join(dir, 'id_ed25519'),
    knownHostsPath: path.join(dir, 'known_hosts'),
    secretsPath: path.join(dir, 'lab.secrets.yml'),
    isDefault: dir === DEFAULTS.dir && bridge === DEFAULTS.bridge && `${intToIp(network)}/${prefixLength}` === DEFAULTS.subnet,
    release,
  };
}

export function machineNames(n: number = DEFAULT_MACHINES): string[] {
  if (!Number.isInteger(n) || n < 1 || n > 99) throw new Error(`machine count must be 1..99, got ${n}`);
  return Array.from({ length: n }, (_, i) => `node${i + 1}`);
}

/** nodeK is the subnet's address .(10+K). */
export function machineAddress(name: string, cfg: LabConfig = labConfig()): string {
  const m = /^node([1-9]\d?)$/.exec(name);
  if (!m) throw new Error(`not a lab machine name: ${name} (node1..node99)`);
  return intToIp(ipToInt(cfg.hostAddress) - 1 + 10 + Number(m[1]));
}

function paths(cfg: LabConfig, name: string) {
  const d = path.join(cfg.dir, 'machines', name);
  return {
    dir: d,
    upper: path.join(d, 'upper'),
    work: path.join(d, 'work'),
    root: path.join(d, 'root'),
    pidFile: path.join(d, 'nspawn.pid'),
    initPidFile: path.join(d, 'init.pid'),
    /** The machine's data disk: a sparse ext4 image, loop-mounted on the host at `data` and bound at /var/lib/postgresql. */
    dataImage: path.join(d, 'data.img'),
    data: path.join(d, 'data'),
    log: path.join(cfg.dir, 'logs', `${name}.log`),
  };
}
/** The cached base image of the lab's release (bookworm keeps the name it always had). */
const baseDir = (cfg: LabConfig) => path.join(cfg.dir, cfg.release === 'bookworm' ? 'base' : `base-${cfg.release}`);
const acngPidFile = (cfg: LabConfig) => path.join(cfg.dir, 'apt-cacher-ng.pid');
/**
 * The machine's name for systemd-nspawn. nspawn names the host side of its link `vb-` + this
 * name, one namespace for the whole host: a lab on another bridge prefixes a short tag of its
 * own, or two labs' node1 would fight over one `vb-node1`. (Link names have 15 characters.)
 */
function nspawnName(cfg: LabConfig, name: string): string {
  if (cfg.isDefault) return name;
  const tag = createHash('sha256').update(cfg.bridge).digest('hex').slice(0, 3);
  return `${tag}-${name}`;
}
const linkName = (cfg: LabConfig, name: string) => `vb-${nspawnName(cfg, name)}`.slice(0, 15);
/** The host side of a machine's link (what partition and heal switch). */
export const machineLink = (name: string, cfg: LabConfig = labConfig()) => linkName(cfg, name);

/** Deletes the machine's host-side link, only if it hangs on this lab's bridge (or on none). */
function deleteOwnLink(cfg: LabConfig, name: string): void {
  const shown = run('ip', ['-o', 'link', 'show', 'dev', linkName(cfg, name)]);
  if (shown.code !== 0) return;
  const master = /\smaster (\S+)/.exec(shown.stdout)?.[1];
  if (master === undefined || master === cfg.bridge) run('ip', ['link', 'del', linkName(cfg, name)]);
}

/** Lab machines that have a directory (created by an earlier up). */
function existingMachines(cfg: LabConfig): string[] {
  const d = path.join(cfg.dir, 'machines');
  if (!fs.existsSync(d)) return [];
  return fs
    .readdirSync(d)
    .filter((n) => /^node\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
}

// ---------------------------------------------------------------- small helpers

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) return { code: 127, stdout: '', stderr: String(r.error.message) };
  return { code: r.status ?? 128, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}
function must(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  }
  return r.stdout;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function assertRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (it creates bridges, mounts and containers)');
}

function readPid(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
function comm(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The recorded nspawn PID of a machine, only if that process is still this machine's nspawn. */
function nspawnPid(cfg: LabConfig, name: string): number | null {
  const pid = readPid(paths(cfg, name).pidFile);
  if (pid === null || !alive(pid) || comm(pid) !== 'systemd-nspawn') return null;
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  return argv.includes(paths(cfg, name).root) ? pid : null;
}

/** The machine's recorded init (its PID 1 as seen from the host), if it still runs in the
 * machine's cgroup. It outlives a killed nspawn, so it is recorded on its own. */
function recordedInit(cfg: LabConfig, name: string): number | null {
  const pid = readPid(paths(cfg, name).initPidFile);
  if (pid === null || !alive(pid)) return null;
  try {
    return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/${cgroupName(cfg, name)}/`) ? pid : null;
  } catch {
    return null;
  }
}

function running(cfg: LabConfig, name: string): boolean {
  return nspawnPid(cfg, name) !== null || recordedInit(cfg, name) !== null;
}

/** The machine's init (its PID 1) as seen from the host: nspawn's child whose innermost PID is 1. */
function initPid(nspawn: number): number | null {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const status = fs.readFileSync(`/proc/${e}/status`, 'utf8');
      const ppid = /^PPid:\s+(\d+)/m.exec(status)?.[1];
      const nspid = /^NSpid:\s+([\d\s]+)$/m.exec(status)?.[1].trim().split(/\s+/);
      if (Number(ppid) === nspawn && nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return Number(e);
    } catch {
      // the process ended while we looked
    }
  }
  return null;
}

async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

/** Whether a TCP connect to host:port succeeds within timeoutMs. */
export function tcpOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function mountPoints(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4].replace(/\\040/g, ' '));
}
function linkExists(ifname: string): boolean {
  return run('ip', ['link', 'show', 'dev', ifname]).code === 0;
}

function writeFileIfChanged(file: string, content: string, mode?: number): void {
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === content) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, mode === undefined ? {} : { mode });
}

// ---------------------------------------------------------------- host preparation

/** The Debian mirror URI of the host's own apt sources (the lab never names a mirror itself). */
export function hostMirror(): string {
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (fs.existsSync(deb822)) {
    for (const stanza of fs.readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(stanza)?.[1].trim().split(/\s+/) ?? [];
      if (field('Suites').includes('bookworm') && field('Types').includes('deb')) {
        const uri = field('URIs')[0];
        if (uri) return uri.replace(/\/+$/, '');
      }
    }
  }
  if (fs.existsSync('/etc/apt/sources.list')) {
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(fs.readFileSync('/etc/apt/sources.list', 'utf8'));
    if (m) return m[1].replace(/\/+$/, '');
  }
  throw new Error(`no Debian bookworm mirror found in the host's apt sources (${deb822})`);
}

/**
 * The host's deb822 apt sources for a machine of `release`: the same mirrors, each bookworm suite
 * (bookworm, bookworm-updates, bookworm-security, ...) renamed. The host itself stays Debian 12.
 */
export function releaseSources(hostSources: string, release: LabRelease): string {
  return hostSources.replace(/^(Suites:.*)$/gim, (line) => line.replace(/\bbookworm(?=-|\s|$)/g, release));
}

/**
 * systemd in every machine takes inotify instances, all as root on the host, where the kernel's
 * default limit (128) is shared by every machine of every lab: a machine's units then fail with
 * "Too many open files". Raised (never lowered) when up finds it too low.
 */
const INOTIFY_INSTANCES = 1024;
function ensureInotifyInstances(log: (s: string) => void): void {
  const file = '/proc/sys/fs/inotify/max_user_instances';
  const now = Number(fs.readFileSync(file, 'utf8').trim());
  if (now >= INOTIFY_INSTANCES) return;
  fs.writeFileSync(file, `${INOTIFY_INSTANCES}\n`);
  log(`raised fs.inotify.max_user_instances from ${now} to ${INOTIFY_INSTANCES} (every machine's systemd takes some)`);
}

/** Installs the host packages the lab needs; no daemon is started by their installation. */
export function ensureHostPackages(): void {
  const missing = HOST_PACKAGES.filter(
    (p) => !/install ok installed/.test(run('dpkg-query', ['-W', '-f=${Status}', p]).stdout),
  );
  if (missing.length === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  must('apt-get', [...lock, 'update', '-qq'], { env });
  const policy = '/usr/sbin/policy-rc.d';
  const ours = !fs.existsSync(policy);
  if (ours) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    must('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
  } finally {
    if (ours) fs.rmSync(policy, { force: true });
  }
}

/** The lab's ssh key pair, made once. Returns the public key line. */
export function ensureKey(cfg: LabConfig = labConfig()): string {
  fs.mkdirSync(cfg.dir, { recursive: true, mode: 0o700 });
  if (!fs.existsSync(cfg.keyPath) || !fs.existsSync(`${cfg.keyPath}.pub`)) {
    fs.rmSync(cfg.keyPath, { force: true });
    fs.rmSync(`${cfg.keyPath}.pub`, { force: true });
    must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pgha-lab', '-f', cfg.keyPath]);
  }
  return fs.readFileSync(`${cfg.keyPath}.pub`, 'utf8').trim();
}

/** Random passwords for pgha's secrets file, written once and kept across up/down. */
function ensureSecrets(cfg: LabConfig): void {
  if (fs.existsSync(cfg.secretsPath)) return;
  const pw = () => randomBytes(24).toString('base64url');
  const text =
    '# Lab passwords for pgha (made once by `npm run lab -- up`; kept across up/down).\n' +
    ['superuser_password', 'replication_password', 'rewind_password', 'restapi_password']
      .map((k) => `${k}: ${pw()}\n`)
      .join('');
  fs.writeFileSync(cfg.secretsPath, text, { mode: 0o600 });
}

/** Host apt settings the machines' apt needs to accept the same mirror (e.g. no Valid-Until check). */
function aptTrustSettings(): string {
  const dump = run('apt-config', ['dump']).stdout;
  return ['Acquire::Check-Valid-Until', 'Acquire::Check-Date']
    .filter((k) => new RegExp(`^${k} "(false|0)";$`, 'mi').test(dump))
    .map((k) => `${k} "false";\n`)
    .join('');
}

const NETWORK_UNIT = `[Unit]
Description=pgha lab: static address on host0 (no DHCP, no default route)
DefaultDependencies=no
Before=network-pre.target network.target ssh.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/pgha-lab/network.env
ExecStart=/bin/ip link set dev host0 up
ExecStart=/bin/ip address replace \${ADDRESS} dev host0

[Install]
WantedBy=sysinit.target
`;

/** The host's packages and the release's base image, ready before any machine boots (`npm run lab -- base`). */
export function prepareBase(log: (s: string) => void = () => {}): void {
  assertRoot();
  const cfg = labConfig();
  ensureHostPackages();
  ensureBase(cfg, log);
}

/**
 * Builds the shared base image once (debootstrap), cached in the lab dir. One process builds it at
 * a time (a lock directory beside it, holding the builder's pid): another waits, then finds it built.
 */
export function ensureBase(cfg: LabConfig = labConfig(), log: (s: string) => void = () => {}): void {
  const base = baseDir(cfg);
  const marker = path.join(base, 'etc/pgha-lab-base');
  const built = () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').trim() === BASE_VERSION;
  if (built()) return;
  fs.mkdirSync(cfg.dir, { recursive: true, mode: 0o700 });
  const lock = `${base}.lock`;
  let waiting = false;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = readPid(path.join(lock, 'pid'));
    // A builder that died (killed) leaves its lock: taken over. One that has not written its pid yet is waited for.
    if (owner !== null && !alive(owner)) fs.rmSync(lock, { recursive: true, force: true });
    else {
      if (!waiting) log(`waiting for the ${RELEASE_LABEL[cfg.release]} base image another process builds${owner ? ` (pid ${owner})` : ''} ...`);
      waiting = true;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    }
  }
  try {
    fs.writeFileSync(path.join(lock, 'pid'), `${process.pid}\n`);
    if (!built()) buildBase(cfg, base, log);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function buildBase(cfg: LabConfig, base: string, log: (s: string) => void): void {
  const build = `${base}.build`;
  if (mountPoints().some((m) => m.startsWith(`${cfg.dir}/machines/`))) {
    throw new Error('the base image must be rebuilt but machines still use it: run `npm run lab -- down` first');
  }
  fs.rmSync(build, { recursive: true, force: true });
  const mirror = hostMirror();
  log(`building the ${RELEASE_LABEL[cfg.release]} base image (debootstrap ${cfg.release} from ${mirror}) ...`);
  must('debootstrap', ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, cfg.release, build, mirror]);
  const at = (p: string) => path.join(build, p);
  // Each machine gets its own host keys and machine id; none may come from the base.
  for (const f of fs.readdirSync(at('etc/ssh'))) if (f.startsWith('ssh_host_')) fs.rmSync(at(`etc/ssh/${f}`));
  fs.writeFileSync(at('etc/machine-id'), '');
  fs.rmSync(at('etc/hostname'), { force: true });
  // The same sources as the host (its mirror and suites, renamed for the release); reached through
  // the host's apt proxy.
  fs.rmSync(at('etc/apt/sources.list'), { force: true });
  fs.writeFileSync(at('etc/apt/sources.list.d/debian.sources'), releaseSources(fs.readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8'), cfg.release));
  const trust = aptTrustSettings();
  if (trust) fs.writeFileSync(at('etc/apt/apt.conf.d/90pgha-lab-mirror'), trust);
  fs.writeFileSync(at('etc/ssh/sshd_config.d/pgha-lab.conf'), 'PasswordAuthentication no\nUseDNS no\n');
  fs.writeFileSync(at('etc/systemd/system/pgha-lab-network.service'), NETWORK_UNIT);
  fs.mkdirSync(at('etc/systemd/system/sysinit.target.wants'), { recursive: true });
  fs.symlinkSync('../pgha-lab-network.service', at('etc/systemd/system/sysinit.target.wants/pgha-lab-network.service'));
  // Nothing in a machine may take the dpkg lock behind pgha's back or wait on a console.
  for (const unit of ['apt-daily.timer', 'apt-daily-upgrade.timer', 'console-getty.service', 'systemd-firstboot.service']) {
    fs.rmSync(at(`etc/systemd/system/${unit}`), { force: true });
    fs.symlinkSync('/dev/null', at(`etc/systemd/system/${unit}`));
  }
  must('chroot', [build, 'apt-get', 'clean']);
  fs.writeFileSync(at('etc/pgha-lab-base'), `${BASE_VERSION}\n`);
  fs.rmSync(base, { recursive: true, force: true });
  fs.renameSync(build, base);
}

function ensureBridge(cfg: LabConfig): void {
  if (!linkExists(cfg.bridge)) must('ip', ['link', 'add', cfg.bridge, 'type', 'bridge']);
  must('ip', ['address', 'replace', `${cfg.hostAddress}/${cfg.prefixLength}`, 'dev', cfg.bridge]);
  must('ip', ['link', 'set', cfg.bridge, 'up']);
}

/** apt-cacher-ng on the bridge address: the machines' only way to Debian's packages. */
/**
 * The lab's own apt-cacher-ng: one instance per lab dir (own pid file, socket, cache and log
 * directories, bound to this lab's bridge address), so labs with other bridges can run at once.
 * The cache survives `down`: later `up`s install from a warm cache.
 */
async function ensureProxy(cfg: LabConfig): Promise<void> {
  const backends = '/etc/apt-cacher-ng/backends_debian';
  const want = `${hostMirror()}/\n`;
  const changed = !fs.existsSync(backends) || fs.readFileSync(backends, 'utf8') !== want;
  if (changed) fs.writeFileSync(backends, want);
  const ours = readPid(acngPidFile(cfg));
  const running = ours !== null && alive(ours) && comm(ours) === 'apt-cacher-ng';
  if (running && !changed && (await tcpOpen(cfg.hostAddress, PROXY_PORT))) return;
  if (running) await stopProxy(cfg);
  else if (await tcpOpen(cfg.hostAddress, PROXY_PORT)) {
    throw new Error(`something else listens on ${cfg.hostAddress}:${PROXY_PORT}; the lab needs that port for its apt proxy`);
  }
  // Not in the lab dir: that is root-only (keys, secrets) and apt-cacher-ng runs as its own user.
  const dir = `/var/cache/pgha-lab-apt/${cfg.bridge}`;
  for (const d of ['cache', 'log', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  must('chown', ['-R', 'apt-cacher-ng:apt-cacher-ng', dir]);
  const log = fs.openSync(path.join(dir, 'log', 'daemon.log'), 'a');
  // setpriv execs (no extra parent process): the pid we record is apt-cacher-ng's own.
  const child = spawn(
    'setpriv',
    [
      '--reuid=apt-cacher-ng', '--regid=apt-cacher-ng', '--init-groups', '/usr/sbin/apt-cacher-ng', '-c', '/etc/apt-cacher-ng',
      'ForeGround=1', `CacheDir=${dir}/cache`, `LogDir=${dir}/log`, `SocketPath=${dir}/run/socket`, `PidFile=${dir}/run/pid`,
      `BindAddress=${cfg.hostAddress}`, `Port=${PROXY_PORT}`,
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  child.unref();
  fs.closeSync(log);
  if (!child.pid) throw new Error('could not start apt-cacher-ng');
  fs.writeFileSync(acngPidFile(cfg), `${child.pid}\n`);
  await waitFor(`the apt proxy on ${cfg.hostAddress}:${PROXY_PORT}`, 10_000, () => tcpOpen(cfg.hostAddress, PROXY_PORT));
}

async function stopProxy(cfg: LabConfig): Promise<void> {
  const pid = readPid(acngPidFile(cfg));
  if (pid !== null && alive(pid) && comm(pid) === 'apt-cacher-ng') {
    process.kill(pid, 'SIGTERM');
    await waitFor('apt-cacher-ng to stop', 15_000, () => !alive(pid)).catch(() => {
      process.kill(pid, 'SIGKILL');
    });
  }
  fs.rmSync(acngPidFile(cfg), { force: true });
}

// ---------------------------------------------------------------- machines

/** Mounts the machine's disk (overlay over the base) and prepares it: first time, and each up. */
/** The release a machine's disk was made from (recorded beside it; machines from before releases are bookworm). */
function machineRelease(cfg: LabConfig, name: string): LabRelease | null {
  const p = paths(cfg, name);
  if (!fs.existsSync(p.upper)) return null;
  const file = path.join(p.dir, 'release');
  return fs.existsSync(file) ? (fs.readFileSync(file, 'utf8').trim() as LabRelease) : 'bookworm';
}

/** Machines of another release in this lab dir are refused before anything is touched: their disks sit on another base. */
function assertOneRelease(cfg: LabConfig): void {
  const other = existingMachines(cfg).filter((n) => (machineRelease(cfg, n) ?? cfg.release) !== cfg.release);
  if (other.length) {
    const was = machineRelease(cfg, other[0])!;
    throw new Error(
      `${other.join(', ')} in ${cfg.dir} ${other.length === 1 ? 'is a' : 'are'} ${RELEASE_LABEL[was]} machine${other.length === 1 ? '' : 's'}, ` +
        `and PGHA_LAB_RELEASE asks for ${RELEASE_LABEL[cfg.release]}: take that lab down first (PGHA_LAB_RELEASE=${was} npm run lab -- down), ` +
        'or use another PGHA_LAB_DIR, PGHA_LAB_BRIDGE and PGHA_LAB_SUBNET',
    );
  }
}

/** Where Debian's PostgreSQL keeps its data in the machines: the machine's data disk is bound here. */
const DATA_DIR = '/var/lib/postgresql';
/** The data disk's size: room for the bench's 1 GB database and its WAL. Sparse: it costs what is written. */
const DATA_DISK_BYTES = 8 * 1024 ** 3;

/**
 * Each machine's PostgreSQL data lives on a disk of its own, as on a real host: an ext4 image
 * loop-mounted on the host (bound into the machine at /var/lib/postgresql), so a test can fill it
 * or slow it down without touching the host's own filesystem. No reserved blocks: "full" means full.
 */
function mountDataDisk(p: ReturnType<typeof paths>): void {
  fs.mkdirSync(p.data, { recursive: true });
  if (mountPoints().includes(p.data)) return;
  if (!fs.existsSync(p.dataImage)) {
    const fd = fs.openSync(p.dataImage, 'wx', 0o600);
    fs.ftruncateSync(fd, DATA_DISK_BYTES);
    fs.closeSync(fd);
    must('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', 'pgdata', p.dataImage]);
  }
  must('mount', ['-o', 'loop', p.dataImage, p.data]); // the loop device goes away with the unmount
}

/** Unmounts the data disk (its throttle cleared first: the loop device's number is reused). */
function unmountDataDisk(cfg: LabConfig, name: string): void {
  const p = paths(cfg, name);
  if (!mountPoints().includes(p.data)) return;
  const dev = dataDevice(p);
  if (dev) for (const f of THROTTLE_FILES) writeThrottle(f, dev, 0);
  must('umount', [p.data]);
}

/** The data disk's block device as major:minor (what blkio throttles name), or null when not mounted. */
function dataDevice(p: ReturnType<typeof paths>): string | null {
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    if (f[4]?.replace(/\\040/g, ' ') === p.data) return f[2];
  }
  return null;
}

const THROTTLE_FILES = ['read_iops_device', 'write_iops_device', 'read_bps_device', 'write_bps_device'] as const;
type ThrottleFile = (typeof THROTTLE_FILES)[number];

/** The host's cgroup v1 blkio hierarchy: the machines' processes stay in its root, so a rule there for
 * the data disk's device slows exactly that machine's data disk. */
function blkioRoot(): string {
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = l.split(' ');
    const rest = f.slice(f.indexOf('-') + 1);
    if (rest[0] === 'cgroup' && /(^|,)blkio(,|$)/.test(rest[2] ?? '')) return f[4];
  }
  throw new Error('slowing a disk needs the cgroup v1 blkio controller, which this host does not mount');
}

function writeThrottle(file: ThrottleFile, dev: string, value: number): void {
  try {
    fs.writeFileSync(path.join(blkioRoot(), `blkio.throttle.${file}`), `${dev} ${value}\n`);
  } catch (err) {
    if (value !== 0) throw err; // clearing a rule that is not there may fail: nothing to clear
  }
}

export interface DiskState {
  /** The data disk's size and what is free on it, in bytes. */
  size: number;
  free: number;
  /** The throttle rules on it (absent: not throttled). */
  iops?: number;
  mbps?: number;
  /** Bytes of the filler file `disk fill` wrote. */
  filled: number;
}

function dataDisk(name: string): { cfg: LabConfig; p: ReturnType<typeof paths>; dev: string } {
  assertRoot();
  const cfg = labConfig();
  machineAddress(name, cfg);
  const p = paths(cfg, name);
  const dev = dataDevice(p);
  if (!dev) throw new Error(`${name} has no data disk mounted; run up first`);
  return { cfg, p, dev };
}
const fillFiles = (p: ReturnType<typeof paths>) => [path.join(p.data, 'pgha-lab-fill'), path.join(p.data, 'pgha-lab-fill-rest')];

/** What the machine's data disk holds and how it is slowed. */
export function diskState(name: string): DiskState {
  const { p, dev } = dataDisk(name);
  const st = fs.statfsSync(p.data);
  const rule = (file: ThrottleFile) => {
    const line = fs.readFileSync(path.join(blkioRoot(), `blkio.throttle.${file}`), 'utf8').split('\n').find((l) => l.startsWith(`${dev} `));
    return line ? Number(line.split(' ')[1]) : undefined;
  };
  const bps = rule('write_bps_device');
  const filled = fillFiles(p).reduce((n, f) => n + (fs.existsSync(f) ? fs.statSync(f).blocks * 512 : 0), 0);
  return { size: st.blocks * st.bsize, free: st.bavail * st.bsize, iops: rule('write_iops_device'), mbps: bps === undefined ? undefined : bps / 2 ** 20, filled };
}

/** Slows the machine's data disk: at most `iops` reads and writes a second each, and `mbps` MiB/s each way if given. */
export function slowDisk(name: string, iops: number, mbps?: number): DiskState {
  const { dev } = dataDisk(name);
  writeThrottle('read_iops_device', dev, iops);
  writeThrottle('write_iops_device', dev, iops);
  if (mbps !== undefined) {
    writeThrottle('read_bps_device', dev, Math.round(mbps * 2 ** 20));
    writeThrottle('write_bps_device', dev, Math.round(mbps * 2 ** 20));
  }
  return diskState(name);
}

/** Fills the machine's data disk to the last block (a file of its own, which `clearDisk` removes). */
export function fillDisk(name: string): DiskState {
  const { p } = dataDisk(name);
  const [big, rest] = fillFiles(p);
  const st = fs.statfsSync(p.data);
  const margin = 16 * 2 ** 20;
  const room = st.bavail * st.bsize;
  if (room > margin) must('fallocate', ['-l', String(room - margin), big]);
  // The last blocks one by one: fallocate cannot take exactly what the filesystem's metadata leaves.
  run('dd', ['if=/dev/zero', `of=${rest}`, 'bs=4096', 'status=none', 'oflag=append', 'conv=notrunc']);
  run('sync', ['-f', p.data]);
  return diskState(name);
}

/** The data disk back to normal: no throttle, the filler removed. */
export function clearDisk(name: string): DiskState {
  const { p, dev } = dataDisk(name);
  for (const f of THROTTLE_FILES) writeThrottle(f, dev, 0);
  for (const f of fillFiles(p)) fs.rmSync(f, { force: true });
  return diskState(name);
}

function prepareMachine(cfg: LabConfig, name: string, all: string[], pubkey: string): void {
  const p = paths(cfg, name);
  const fresh = !fs.existsSync(p.upper);
  for (const d of [p.upper, p.work, p.root, path.dirname(p.log)]) fs.mkdirSync(d, { recursive: true });
  if (fresh) fs.writeFileSync(path.join(p.dir, 'release'), `${cfg.release}\n`);
  if (!mountPoints().includes(p.root)) {
    must('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${baseDir(cfg)},upperdir=${p.upper},workdir=${p.work}`, p.root]);
  }
  mountDataDisk(p);
  const at = (f: string) => path.join(p.root, f);
  if (!fs.existsSync(at('etc/pgha-lab-machine'))) {
    fs.writeFileSync(at('etc/machine-id'), `${randomBytes(16).toString('hex')}\n`);
    must('ssh-keygen', ['-A', '-f', p.root]);
    fs.writeFileSync(at('etc/pgha-lab-machine'), `${name}\n`);
  }
  writeFileIfChanged(at('etc/pgha-lab/network.env'), `ADDRESS=${machineAddress(name, cfg)}/${cfg.prefixLength}\n`);
  fs.copyFileSync(PREPARE_HOST_SCRIPT, at(PREPARE_HOST_IN_MACHINE.slice(1)));
  fs.chmodSync(at(PREPARE_HOST_IN_MACHINE.slice(1)), 0o755);
  must('chroot', [
    p.root, '/bin/sh', PREPARE_HOST_IN_MACHINE, cfg.user, pubkey, name,
    ...all.map((n) => `${n}=${machineAddress(n, cfg)}`),
  ]);
}

async function bootMachine(cfg: LabConfig, name: string): Promise<number> {
  const p = paths(cfg, name);
  fs.mkdirSync(path.dirname(p.log), { recursive: true });
  deleteOwnLink(cfg, name); // left by a killed session
  const logFd = fs.openSync(p.log, 'a');
  fs.writeSync(logFd, `\n--- ${new Date().toISOString()} boot ${name}\n`);
  // Each machine's systemd needs a cgroup of its own: nspawn with --keep-unit stays in the
  // cgroup it was started in, and machines sharing one break each other's units. It must look
  // like a unit's (NAME.scope), or nspawn asks for a system bus the host does not have.
  const cgroups = cgroupRoots().map((r) => path.join(r, cgroupName(cfg, name)));
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      'for cg in "$1" "$2"; do [ -z "$cg" ] || { mkdir -p "$cg" && echo $$ >"$cg/cgroup.procs"; } || exit 1; done; ' +
        'shift 2; exec systemd-nspawn "$@"',
      'pgha-lab',
      cgroups[0] ?? '',
      cgroups[1] ?? '',
      '--register=no', '--keep-unit', '--quiet', '-D', p.root, '-M', nspawnName(cfg, name), '--boot',
      `--network-bridge=${cfg.bridge}`, '--link-journal=no', '--console=read-only', '--resolv-conf=off',
      '--timezone=off', `--bind=${p.data}:${DATA_DIR}`,
    ],
    { detached: true, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  if (!child.pid) throw new Error(`could not start systemd-nspawn for ${name}`);
  child.unref();
  const pid = child.pid;
  fs.writeFileSync(p.pidFile, `${pid}\n`);
  // The shell becomes nspawn once it has moved itself into the machine's cgroup.
  await waitFor(`${name}'s systemd-nspawn to start`, 10_000, () => comm(pid) === 'systemd-nspawn' || !alive(pid));
  let init: number | null = null;
  await waitFor(`${name}'s init to start`, 10_000, () => (init = initPid(pid)) !== null || !alive(pid));
  if (!alive(pid) || init === null) throw new Error(`systemd-nspawn for ${name} exited at once; see ${p.log}`);
  fs.writeFileSync(p.initPidFile, `${init}\n`);
  return pid;
}

/** The cgroup hierarchies systemd uses (the unified one and, on a hybrid host, name=systemd). */
function cgroupRoots(): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => {
      const rest = f.slice(f.indexOf('-') + 1);
      return rest[0] === 'cgroup2' || (rest[0] === 'cgroup' && /(^|,)name=systemd(,|$)/.test(rest[2] ?? ''));
    })
    .map((f) => f[4])
    .slice(0, 2);
}

const cgroupName = (cfg: LabConfig, name: string) => `pgha-lab-${cfg.bridge}-${name}.scope`;

/** Removes a stopped machine's cgroups (bottom-up; its systemd made sub-cgroups). */
function removeCgroups(cfg: LabConfig, name: string): void {
  const rm = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(path.join(d, e.name));
    try {
      fs.rmdirSync(d);
    } catch {
      // still in use, or not removable: left for the next down
    }
  };
  for (const r of cgroupRoots()) rm(path.join(r, cgroupName(cfg, name)));
}

function writeKnownHosts(cfg: LabConfig): void {
  const lines = existingMachines(cfg).flatMap((name) => hostKeyLines(cfg, name));
  fs.writeFileSync(cfg.knownHostsPath, lines.map((l) => `${l}\n`).join(''), { mode: 0o644 });
}

function sshArgs(cfg: LabConfig, name: string, connectTimeout = 10, knownHostsPath = cfg.knownHostsPath): string[] {
  return [
    '-i', cfg.keyPath, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', `ConnectTimeout=${connectTimeout}`, '-o', 'LogLevel=ERROR',
    `${cfg.user}@${machineAddress(name, cfg)}`,
  ];
}

/**
 * Runs a shell command on a machine as the lab's admin user (host key checked strictly, against
 * the lab's known_hosts unless `knownHostsPath` names another file).
 */
export function ssh(name: string, cmd: string, opts: { timeoutMs?: number; input?: string; knownHostsPath?: string } = {}): Promise<Result> {
  const cfg = labConfig();
  return new Promise((resolve) => {
    const child = spawn('ssh', [...sshArgs(cfg, name, 10, opts.knownHostsPath), '--', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => (stderr += String(e)));
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 255), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** ssh's argument list for a machine (for an interactive session). */
export function sshCommandLine(name: string): string[] {
  return ['ssh', ...sshArgs(labConfig(), name)];
}

async function waitSsh(cfg: LabConfig, name: string, timeoutMs = 90_000, knownHostsPath?: string): Promise<void> {
  const address = machineAddress(name, cfg);
  await waitFor(`${name} (${address}) to answer ssh`, timeoutMs, async () => {
    if (nspawnPid(cfg, name) === null) throw new Error(`${name} stopped while booting; see ${paths(cfg, name).log}`);
    if (!(await tcpOpen(address, 22))) return false;
    return (await ssh(name, 'true', { timeoutMs: 10_000, knownHostsPath })).code === 0;
  });
}

/** What poweroff killed: the machine's init, or (no init found) its systemd-nspawn; null: nothing ran. */
export interface PoweroffResult {
  killed: { what: 'init' | 'systemd-nspawn'; pid: number } | null;
}

/** Power loss: SIGKILL of the machine's init, so everything in it dies at once. */
export async function poweroff(name: string): Promise<PoweroffResult> {
  assertRoot();
  const cfg = labConfig();
  machineAddress(name, cfg);
  const pid = nspawnPid(cfg, name);
  const init = (pid !== null ? initPid(pid) : null) ?? recordedInit(cfg, name);
  const killed: PoweroffResult['killed'] = init !== null ? { what: 'init', pid: init } : pid !== null ? { what: 'systemd-nspawn', pid } : null;
  if (killed) process.kill(killed.pid, 'SIGKILL');
  stopDelayer(cfg, name);
  fs.rmSync(netemFile(cfg, name), { force: true });
  await waitFor(`${name} to stop`, 15_000, () => (pid === null || !alive(pid)) && (init === null || !alive(init)));
  fs.rmSync(paths(cfg, name).pidFile, { force: true });
  fs.rmSync(paths(cfg, name).initPidFile, { force: true });
  removeCgroups(cfg, name);
  deleteOwnLink(cfg, name);
  return { killed };
}

export interface StartResult {
  /** false: it was running already (only waited for ssh). */
  booted: boolean;
  /** From the call until it answered ssh. */
  sshMs: number;
}

/** Boots a stopped machine again (its disk is kept) and waits until it answers ssh. */
export async function start(name: string): Promise<StartResult> {
  assertRoot();
  const cfg = labConfig();
  machineAddress(name, cfg);
  if (!fs.existsSync(paths(cfg, name).upper)) throw new Error(`${name} is not part of the lab; run up first`);
  assertOneRelease(cfg);
  const t0 = Date.now();
  const booted = nspawnPid(cfg, name) === null;
  if (booted) {
    await poweroff(name); // an init left running by a killed nspawn
    const all = existingMachines(cfg);
    ensureBridge(cfg);
    prepareMachine(cfg, name, all, ensureKey(cfg));
    await bootMachine(cfg, name);
  }
  await waitSsh(cfg, name);
  return { booted, sshMs: Date.now() - t0 };
}

/** The machine's own host keys (read from its disk) as known_hosts lines, by address and name. */
function hostKeyLines(cfg: LabConfig, name: string): string[] {
  const etcSsh = path.join(paths(cfg, name).root, 'etc/ssh');
  if (!fs.existsSync(etcSsh)) return [];
  return fs
    .readdirSync(etcSsh)
    .filter((f) => /^ssh_host_.*_key\.pub$/.test(f))
    .sort()
    .map((f) => {
      const [type, key] = fs.readFileSync(path.join(etcSsh, f), 'utf8').trim().split(/\s+/);
      return `${machineAddress(name, cfg)},${name} ${type} ${key}`;
    });
}

/** SHA256 fingerprints of the machine's host keys, as `ssh-keygen -lf` prints them ("256 SHA256:... (ED25519)"). */
export function hostKeyFingerprints(name: string): string[] {
  const cfg = labConfig();
  const etcSsh = path.join(paths(cfg, name).root, 'etc/ssh');
  return fs
    .readdirSync(etcSsh)
    .filter((f) => /^ssh_host_.*_key\.pub$/.test(f))
    .sort()
    .map((f) => must('ssh-keygen', ['-lf', path.join(etcSsh, f)]).trim().replace(/ \S+@\S+ /, ' '));
}

export interface RebuildResult {
  /** `ssh-keygen -lf` of each new host key. */
  fingerprints: string[];
  /** From the call until it answered ssh. */
  ms: number;
}

/**
 * A machine rebuilt: powered off (as a dead machine is), its disk replaced by an empty one over
 * the base image, new host keys and machine id, the same name and address, then booted and
 * waited for (ssh checked against its new keys). The lab's known_hosts keeps the old keys, as an
 * operator's would: `pgha replace` is what records the new one.
 */
export async function rebuild(name: string): Promise<RebuildResult> {
  assertRoot();
  const cfg = labConfig();
  machineAddress(name, cfg);
  const p = paths(cfg, name);
  if (!fs.existsSync(p.upper)) throw new Error(`${name} is not part of the lab; run up first`);
  const t0 = Date.now();
  await poweroff(name);
  if (mountPoints().includes(p.root)) must('umount', [p.root]);
  unmountDataDisk(cfg, name);
  fs.rmSync(p.upper, { recursive: true, force: true });
  fs.rmSync(p.work, { recursive: true, force: true });
  fs.rmSync(p.dataImage, { force: true });
  ensureBridge(cfg);
  prepareMachine(cfg, name, existingMachines(cfg), ensureKey(cfg));
  await bootMachine(cfg, name);
  const fresh = path.join(cfg.dir, `known_hosts.${name}.rebuilt`);
  fs.writeFileSync(fresh, hostKeyLines(cfg, name).map((l) => `${l}\n`).join(''), { mode: 0o644 });
  try {
    await waitSsh(cfg, name, 90_000, fresh);
  } finally {
    fs.rmSync(fresh, { force: true });
  }
  return { fingerprints: hostKeyFingerprints(name), ms: Date.now() - t0 };
}

/** Cuts the machine off the bridge (its host-side link goes down): a network partition. Returns the link. */
export function partition(name: string): string {
  assertRoot();
  const cfg = labConfig();
  must('ip', ['link', 'set', 'dev', linkName(cfg, name), 'down']);
  return linkName(cfg, name);
}

/** Restores the machine's link and re-attaches it to the bridge, with no netem shaping left on it. Returns the link. */
export function heal(name: string): string {
  assertRoot();
  const cfg = labConfig();
  linkBackUp(cfg, name);
  if (running(cfg, name)) netemClear(name);
  return linkName(cfg, name);
}

function linkBackUp(cfg: LabConfig, name: string): void {
  must('ip', ['link', 'set', 'dev', linkName(cfg, name), 'up']);
  must('ip', ['link', 'set', 'dev', linkName(cfg, name), 'master', cfg.bridge]);
}

/**
 * A stall: the machine's link fully down for `seconds`, then back up (a partition that heals by
 * itself, as a switch's hiccup or a VM's pause does). Netem shaping on the link is kept. Returns
 * when the link is up again.
 */
export async function stall(name: string, seconds: number): Promise<string> {
  assertRoot();
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new Error(`stall needs a duration of 0 to 3600 seconds, got ${seconds}`);
  const cfg = labConfig();
  must('ip', ['link', 'set', 'dev', linkName(cfg, name), 'down']);
  try {
    await sleep(seconds * 1000);
  } finally {
    linkBackUp(cfg, name);
  }
  return linkName(cfg, name);
}

// ---------------------------------------------------------------- degraded links (netem)
//
// The lab's kernel has no netem qdisc, so `netem` is built from what it has, inside the machine's
// own network namespace (entered from the host with nsenter, so the machine needs nothing
// installed): random loss with nftables (`numgen random`, both directions of its lab link), delay
// and jitter with an NFQUEUE (iptables-legacy, the machine's outgoing packets on its lab link) and
// test/lab/netem-delayer.py on the host holding each packet DELAY +- JITTER ms. Like netem on the
// machine's interface, the delay is added once per round trip. `netem NAME clear`, heal and
// poweroff (so down) remove it all; the queue's bypass lets packets through should the delayer die.

export interface NetemSpec {
  /** Added to each packet the machine sends on its lab link (ms). */
  delayMs: number;
  /** Uniform jitter around delayMs (ms). */
  jitterMs: number;
  /** Packets dropped at random, in each direction (percent, 0.1 steps). */
  lossPct: number;
}

const NETEM_TABLE = 'pgha_netem';
const NETEM_CHAIN = 'PGHA_NETEM';
const NETEM_QUEUE = '0';
const MACHINE_LINK = 'host0';
export const NETEM_DELAYER = path.join(REPO_ROOT, 'test/lab/netem-delayer.py');
const netemFile = (cfg: LabConfig, name: string) => path.join(paths(cfg, name).dir, 'netem.json');
const delayerPidFile = (cfg: LabConfig, name: string) => path.join(paths(cfg, name).dir, 'netem-delayer.pid');

/**
 * The verb's arguments as an operator writes them, netem's own syntax: `delay 200ms [100ms]`,
 * `loss 5%`, both (`delay 200ms 100ms loss 5%`); units optional. Throws with what was expected.
 */
export function parseNetem(args: string[]): NetemSpec {
  const spec: NetemSpec = { delayMs: 0, jitterMs: 0, lossPct: 0 };
  const ms = (s: string | undefined, what: string) => {
    const m = /^(\d+(?:\.\d+)?)(ms)?$/.exec(s ?? '');
    if (!m) throw new Error(`netem: ${what} must be milliseconds (e.g. 200ms), got ${JSON.stringify(s ?? '')}`);
    return Number(m[1]);
  };
  let i = 0;
  if (args.length === 0) throw new Error('netem needs delay MS [JITTER_MS] and/or loss PCT%, or clear');
  while (i < args.length) {
    const word = args[i++];
    if (word === 'delay') {
      spec.delayMs = ms(args[i++], 'delay');
      if (args[i] !== undefined && /^\d/.test(args[i])) spec.jitterMs = ms(args[i++], 'jitter');
      if (spec.jitterMs > spec.delayMs) throw new Error(`netem: jitter ${spec.jitterMs} ms is larger than the delay ${spec.delayMs} ms`);
      if (spec.delayMs > 60_000) throw new Error('netem: delay is at most 60000 ms');
    } else if (word === 'loss') {
      const m = /^(\d+(?:\.\d+)?)%?$/.exec(args[i++] ?? '');
      if (!m || Number(m[1]) > 100) throw new Error(`netem: loss must be a percentage from 0 to 100 (e.g. 5%), got ${JSON.stringify(args[i - 1] ?? '')}`);
      spec.lossPct = Math.round(Number(m[1]) * 10) / 10;
    } else {
      throw new Error(`netem: unknown word ${JSON.stringify(word)}: expected delay MS [JITTER_MS], loss PCT% or clear`);
    }
  }
  return spec;
}

export function describeNetem(spec: NetemSpec | null): string {
  if (!spec || (spec.delayMs === 0 && spec.lossPct === 0)) return 'no shaping';
  const parts: string[] = [];
  if (spec.delayMs > 0) parts.push(`delay ${spec.delayMs}ms${spec.jitterMs > 0 ? ` +-${spec.jitterMs}ms` : ''} (outgoing)`);
  if (spec.lossPct > 0) parts.push(`loss ${spec.lossPct}% (each direction)`);
  return parts.join(', ');
}

/** The machine's init PID (its network namespace); throws when it is not running. */
function machineInit(cfg: LabConfig, name: string): number {
  const nspawn = nspawnPid(cfg, name);
  const pid = (nspawn !== null ? initPid(nspawn) : null) ?? recordedInit(cfg, name);
  if (pid === null) throw new Error(`${name} is not running`);
  return pid;
}

/** A host command run in the machine's network namespace. */
const inNetns = (pid: number, cmd: string, args: string[], input?: string) => run('nsenter', ['-t', String(pid), '-n', cmd, ...args], input === undefined ? {} : { input });
function mustInNetns(pid: number, cmd: string, args: string[], input?: string): void {
  const r = inNetns(pid, cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in the machine's network namespace failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
}

/** The shaping in effect on a machine's link (null: none). */
export function netemState(name: string, cfg: LabConfig = labConfig()): NetemSpec | null {
  try {
    return JSON.parse(fs.readFileSync(netemFile(cfg, name), 'utf8')) as NetemSpec;
  } catch {
    return null;
  }
}

/** Shapes the machine's lab link (replacing earlier shaping). Returns what is in effect, in words. */
export async function netem(name: string, spec: NetemSpec): Promise<string> {
  assertRoot();
  const cfg = labConfig();
  machineAddress(name, cfg);
  ensureHostPackages();
  netemClear(name);
  const pid = machineInit(cfg, name);
  try {
    if (spec.lossPct > 0) {
      const permille = Math.round(spec.lossPct * 10);
      const rule = (dir: 'input' | 'output') =>
        `  chain ${dir} { type filter hook ${dir} priority 0; policy accept; ${dir === 'input' ? 'iifname' : 'oifname'} "${MACHINE_LINK}" numgen random mod 1000 < ${permille} counter drop; }\n`;
      mustInNetns(pid, 'nft', ['-f', '-'], `table inet ${NETEM_TABLE} {\n${rule('input')}${rule('output')}}\n`);
    }
    if (spec.delayMs > 0) {
      const log = path.join(paths(cfg, name).dir, 'netem-delayer.log');
      const out = fs.openSync(log, 'w');
      const child = spawn('nsenter', ['-t', String(pid), '-n', '/usr/bin/python3', NETEM_DELAYER, NETEM_QUEUE, String(spec.delayMs), String(spec.jitterMs)], {
        detached: true,
        stdio: ['ignore', out, out],
      });
      fs.closeSync(out);
      child.unref();
      fs.writeFileSync(delayerPidFile(cfg, name), `${child.pid}\n`);
      await waitFor(`${name}'s packet delayer to bind its queue (log ${log})`, 10_000, () => {
        if (child.pid === undefined || !alive(child.pid)) throw new Error(`${name}'s packet delayer ended: ${fs.readFileSync(log, 'utf8').trim()}`);
        return fs.readFileSync(log, 'utf8').includes('delaying queue');
      });
      const ipt = (args: string[]) => mustInNetns(pid, 'iptables-legacy', ['-w', ...args]);
      ipt(['-N', NETEM_CHAIN]);
      ipt(['-A', NETEM_CHAIN, '-j', 'NFQUEUE', '--queue-num', NETEM_QUEUE, '--queue-bypass']);
      ipt(['-A', 'OUTPUT', '-o', MACHINE_LINK, '-j', NETEM_CHAIN]);
    }
  } catch (err) {
    netemClear(name);
    throw err;
  }
  fs.writeFileSync(netemFile(cfg, name), `${JSON.stringify(spec)}\n`);
  return describeNetem(spec);
}

/** The delayer process of a machine, if it still runs (checked by its command line). */
function delayerPid(cfg: LabConfig, name: string): number | null {
  const pid = readPid(delayerPidFile(cfg, name));
  if (pid === null || !alive(pid)) return null;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(NETEM_DELAYER) ? pid : null;
  } catch {
    return null;
  }
}

function stopDelayer(cfg: LabConfig, name: string): void {
  const pid = delayerPid(cfg, name);
  if (pid !== null) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 3000;
    while (alive(pid) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  fs.rmSync(delayerPidFile(cfg, name), { force: true });
}

/** Removes every netem shaping from the machine's link (idempotent). */
export function netemClear(name: string): void {
  assertRoot();
  const cfg = labConfig();
  machineAddress(name, cfg);
  const nspawn = nspawnPid(cfg, name);
  const pid = (nspawn !== null ? initPid(nspawn) : null) ?? recordedInit(cfg, name);
  if (pid !== null) {
    if (inNetns(pid, 'nft', ['list', 'table', 'inet', NETEM_TABLE]).code === 0) mustInNetns(pid, 'nft', ['delete', 'table', 'inet', NETEM_TABLE]);
    if (inNetns(pid, 'iptables-legacy', ['-w', '-n', '-L', NETEM_CHAIN]).code === 0) {
      while (inNetns(pid, 'iptables-legacy', ['-w', '-D', 'OUTPUT', '-o', MACHINE_LINK, '-j', NETEM_CHAIN]).code === 0) {
        // a rule added twice goes twice
      }
      mustInNetns(pid, 'iptables-legacy', ['-w', '-F', NETEM_CHAIN]);
      mustInNetns(pid, 'iptables-legacy', ['-w', '-X', NETEM_CHAIN]);
    }
  }
  stopDelayer(cfg, name);
  fs.rmSync(netemFile(cfg, name), { force: true });
}

export function status(): { config: LabConfig; bridge: boolean; proxy: number | null; machines: MachineStatus[] } {
  const cfg = labConfig();
  const acng = readPid(acngPidFile(cfg));
  return {
    config: cfg,
    bridge: linkExists(cfg.bridge),
    proxy: acng !== null && alive(acng) && comm(acng) === 'apt-cacher-ng' ? acng : null,
    machines: existingMachines(cfg).map((name) => {
      const pid = nspawnPid(cfg, name) ?? recordedInit(cfg, name);
      const link = run('ip', ['-o', 'link', 'show', 'dev', linkName(cfg, name)]);
      return {
        name,
        address: machineAddress(name, cfg),
        running: running(cfg, name),
        pid,
        linkUp: link.code === 0 ? /[<,]UP[,>]/.test(link.stdout) : null,
        netem: netemState(name, cfg),
        release: machineRelease(cfg, name),
      };
    }),
  };
}

/** True when node1..nodeN run (N defaults to 4). */
export function isUp(n: number = DEFAULT_MACHINES): boolean {
  const cfg = labConfig();
  return linkExists(cfg.bridge) && machineNames(n).every((name) => nspawnPid(cfg, name) !== null);
}

/**
 * Boots node1..nodeN (idempotent: running machines are kept) and waits until each answers ssh.
 * On failure everything is taken down again; if that fails too, the error lists what is left.
 */
export async function up(n: number = DEFAULT_MACHINES, log: (s: string) => void = () => {}): Promise<void> {
  assertRoot();
  const cfg = labConfig();
  const names = machineNames(n);
  assertOneRelease(cfg);
  try {
    ensureHostPackages();
    ensureInotifyInstances(log);
    bastionOff(cfg); // every test but the bastion's own expects the machines reachable
    const pubkey = ensureKey(cfg);
    ensureSecrets(cfg);
    ensureBase(cfg, log);
    ensureBridge(cfg);
    await ensureProxy(cfg);
    const all = [...new Set([...existingMachines(cfg), ...names])];
    for (const name of all) prepareMachine(cfg, name, all, pubkey);
    writeKnownHosts(cfg);
    for (const name of names) {
      if (nspawnPid(cfg, name) !== null) continue;
      await poweroff(name); // an init left running by a killed nspawn
      await bootMachine(cfg, name);
    }
    await Promise.all(names.map((name) => waitSsh(cfg, name)));
    if (!cfg.isDefault) writeLabInventory(cfg);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (process.env.PGHA_LAB_KEEP_FAILED) throw new Error(`lab up failed (left in place for inspection): ${msg}`);
    try {
      await down();
    } catch (cleanupErr) {
      throw new Error(`lab up failed: ${msg}\nand cleaning up failed too: ${String(cleanupErr)}\nleft: ${JSON.stringify(leftovers(cfg))}`);
    }
    throw new Error(`lab up failed (everything was taken down again): ${msg}`);
  }
}

/** What of the lab is still present on the host (empty lists after down). */
export function leftovers(cfg: LabConfig = labConfig()): { pids: number[]; mounts: string[]; links: string[] } {
  const pids = existingMachines(cfg)
    .flatMap((n) => [nspawnPid(cfg, n), recordedInit(cfg, n)])
    .filter((p): p is number => p !== null);
  const acng = readPid(acngPidFile(cfg));
  if (acng !== null && alive(acng) && comm(acng) === 'apt-cacher-ng') pids.push(acng);
  const mounts = mountPoints().filter((m) => m.startsWith(`${cfg.dir}/`));
  // This lab's bridge, and machine links that hang on it (or on nothing): never another lab's.
  const ours = cfg.isDefault ? /^vb-node\d+$/ : new RegExp(`^${linkName(cfg, 'node').replace(/[-]/g, '\\-')}\\d+$`);
  const links = run('ip', ['-o', 'link', 'show']).stdout
    .split('\n')
    .map((l) => ({ name: /^\d+:\s+([^:@]+)/.exec(l)?.[1], master: /\smaster (\S+)/.exec(l)?.[1] }))
    .filter((l) => !!l.name && (l.name === cfg.bridge || (ours.test(l.name) && (l.master === undefined || l.master === cfg.bridge))))
    .map((l) => l.name!);
  return { pids, mounts, links };
}

/** Stops every machine (by recorded PID), the apt proxy the lab started, unmounts and removes the
 * machines' disks, the bridge and links. The base image, keys and secrets stay. Idempotent. */
export async function down(): Promise<void> {
  assertRoot();
  const cfg = labConfig();
  await Promise.all(existingMachines(cfg).map((name) => poweroff(name)));
  for (const name of existingMachines(cfg)) {
    const p = paths(cfg, name);
    if (mountPoints().includes(p.root)) must('umount', [p.root]);
    unmountDataDisk(cfg, name);
    fs.rmSync(p.dir, { recursive: true, force: true });
    removeCgroups(cfg, name);
  }
  // Mounts under the lab dir left by an earlier, killed session.
  for (const m of mountPoints().filter((m) => m.startsWith(`${cfg.dir}/machines/`)).reverse()) must('umount', [m]);
  await stopProxy(cfg);
  bastionOff(cfg);
  for (const l of leftovers(cfg).links) run('ip', ['link', 'del', l]);
  fs.rmSync(cfg.knownHostsPath, { force: true });
  const left = leftovers(cfg);
  if (left.pids.length || left.mounts.length || left.links.length) {
    throw new Error(`lab down left: ${JSON.stringify(left)}`);
  }
}

// ---------------------------------------------------------------- the bastion (jump host) setup

/**
 * The host's routing rules of the bastion setup: SSH (tcp port 22) from the host to this lab's
 * subnet is unreachable, except to the bastion. Everything else (HAProxy and PostgreSQL ports for
 * test clients, the apt proxy, traffic between machines on the bridge) is untouched.
 */
function bastionRules(cfg: LabConfig): string[][] {
  return [
    ['pref', String(BASTION_RULE_PREFS.allow), 'to', `${machineAddress(BASTION, cfg)}/32`, 'ipproto', 'tcp', 'dport', '22', 'lookup', 'main'],
    ['pref', String(BASTION_RULE_PREFS.deny), 'to', cfg.subnet, 'ipproto', 'tcp', 'dport', '22', 'unreachable'],
  ];
}

/** True while the bastion setup is on (its deny rule is in place). */
export function isolated(cfg: LabConfig = labConfig()): boolean {
  return run('ip', ['rule', 'show', 'pref', String(BASTION_RULE_PREFS.deny)]).stdout.includes(`to ${cfg.subnet} ipproto tcp dport 22 unreachable`);
}

/**
 * Boots the bastion (node5) if needed and makes it the only machine the host reaches over SSH:
 * the others answer only through it, as database hosts behind a bastion do. Returns its address.
 */
export async function bastionOn(log: (s: string) => void = () => {}): Promise<string> {
  assertRoot();
  const cfg = labConfig();
  if (!isUp(Number(BASTION.slice(4)))) await up(Number(BASTION.slice(4)), log);
  bastionOff();
  for (const rule of bastionRules(cfg)) must('ip', ['rule', 'add', ...rule]);
  return machineAddress(BASTION, cfg);
}

/** Removes the bastion setup's rules (idempotent; the machines keep running). */
export function bastionOff(cfg: LabConfig = labConfig()): void {
  for (const rule of bastionRules(cfg)) {
    while (run('ip', ['rule', 'del', ...rule]).code === 0) {
      // a rule added twice goes twice
    }
  }
}

// ---------------------------------------------------------------- inventory

const LAB_INVENTORY = path.join(REPO_ROOT, 'inventories/lab.yml');

/** inventories/lab.yml, with addresses and paths rewritten for this lab's configuration. */
export function labInventoryText(cfg: LabConfig = labConfig()): string {
  const doc = parseDocument(fs.readFileSync(LAB_INVENTORY, 'utf8'));
  doc.set('secrets', cfg.secretsPath);
  doc.setIn(['ssh', 'private_key'], cfg.keyPath);
  doc.setIn(['ssh', 'known_hosts'], cfg.knownHostsPath);
  doc.setIn(['packages', 'apt_proxy'], cfg.proxyUrl);
  const hosts = doc.get('hosts') as { items: { key: { value: string } }[] };
  for (const item of hosts.items) doc.setIn(['hosts', item.key.value, 'address'], machineAddress(item.key.value, cfg));
  const hba = doc.getIn(['patroni', 'pg_hba']) as { items: { value: string }[] } | undefined;
  hba?.items.forEach((rule, i) => {
    doc.setIn(['patroni', 'pg_hba', i], String(rule.value).replace(DEFAULTS.subnet, cfg.subnet));
  });
  return doc.toString();
}

/**
 * The lab inventory with its hosts behind the bastion: `ssh.jump` names it (with the lab's user).
 * `mutate` edits the YAML document further (e.g. drop ssh.private_key for an agent-only key).
 */
export function labBastionInventoryText(mutate: (doc: ReturnType<typeof parseDocument>) => void = () => {}, cfg: LabConfig = labConfig()): string {
  const doc = parseDocument(labInventoryText(cfg));
  doc.setIn(['ssh', 'jump'], `${cfg.user}@${machineAddress(BASTION, cfg)}:22`);
  mutate(doc);
  return doc.toString();
}

function writeLabInventory(cfg: LabConfig): string {
  const file = path.join(cfg.dir, 'lab.yml');
  writeFileIfChanged(file, labInventoryText(cfg));
  return file;
}

/** A pgha inventory for this lab: inventories/lab.yml, or (if the lab is configured away from
 * the defaults) an adjusted copy written into the lab dir. */
export function labInventoryPath(cfg: LabConfig = labConfig()): string {
  return cfg.isDefault ? LAB_INVENTORY : writeLabInventory(cfg);
}
