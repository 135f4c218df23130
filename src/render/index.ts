// Public API of rendering (whole files from the inventory, never patches):
//
//   renderHost(inv: Inventory, host: string, opts: { dcs: Dcs }): RenderedFile[]
//     Every file pgha writes on that host, for its roles only. Needs inv.secrets.
//   dcsForPatroniVersion(version: string): Dcs
//     'etcd' (v2 API) below Patroni 3.0.3, 'etcd3' from 3.0.3 on.
//   maskSecrets(text: string, inv: Inventory): string
//     Replaces every secret value with ******** (the text masker, src/ssh/mask.ts).
//   maskedContent(f: RenderedFile, inv: Inventory): string
//     A rendered file with its secrets masked: by its own structure (f.mask), then as text.
//   renderToDir(inv, dir, opts: { dcs, host?, showSecrets? }): Promise<string[]>
//     Writes DIR/HOST/<absolute path> (what `pgha render` does); returns the paths written.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { InputError } from '../errors.js';
import { MANAGED_PARAMETERS, type Host, type Inventory } from '../inventory/index.js';
import { Masker } from '../ssh/mask.js';
import { yamlSecretMask, type SecretMask } from './secret-mask.js';

export type Dcs = 'etcd' | 'etcd3';
/**
 * archive_command: pgbackrest archive-push, minus an old primary's WAL written after a failover
 * (see the template). pgBackRest's check wants "pgbackrest" in archive_command, hence the name.
 */
export const ARCHIVE_PUSH = '/usr/local/lib/pgha/pgbackrest-archive-push';

/** SSH client config of user postgres on database hosts: one shared connection to the repository host. */
export const PGBACKREST_SSH_CONFIG = '/var/lib/postgresql/.ssh/config';

export type Component = 'apt' | 'postgres-common' | 'etcd' | 'patroni' | 'haproxy' | 'pgbackrest' | 'backup-schedule';

export interface RenderedFile {
  /** Absolute path on the host. */
  path: string;
  content: string;
  owner: string;
  group: string;
  /** e.g. 0o600 */
  mode: number;
  component: Component;
  /** True when the content holds a password. */
  secret: boolean;
  /**
   * How to mask this file's secrets by structure (diffs on the host, masked renders). A secret
   * file without one never shows a diff.
   */
  mask?: SecretMask;
}

/**
 * Keys of Patroni's config whose values are or may hold passwords: every *password (restapi,
 * postgresql.authentication.*, ssl and key file ones) and connection strings (primary_conninfo).
 */
export const isPatroniSecretKey = (key: string): boolean => /(password|conninfo)$/i.test(key);
const PATRONI_MASK = yamlSecretMask(isPatroniSecretKey);

const TEMPLATE_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));
const HEADER = 'Written by pgha from the inventory. Local changes are overwritten by the next apply.';

const hbs = Handlebars.create();
hbs.registerHelper('json', (v: unknown) => JSON.stringify(v));
hbs.registerHelper('aptString', (v: string) => aptString(v));
const compiled = new Map<string, HandlebarsTemplateDelegate>();

function render(name: string, ctx: object): string {
  let t = compiled.get(name);
  if (!t) {
    t = hbs.compile(readFileSync(join(TEMPLATE_DIR, name), 'utf8'), { noEscape: true, strict: true });
    compiled.set(name, t);
  }
  return t({ header: HEADER, ...ctx });
}

/** Patroni 3.0.2's `etcd3:` DCS can lose acknowledged writes after a partition (fixed in 3.0.3). */
export function dcsForPatroniVersion(version: string): Dcs {
  return patroniVersionNumber(version) < 3_000_003 ? 'etcd' : 'etcd3';
}

/** 3.0.2 (or a Debian version like 3.0.2-1) as 3_000_002, for comparisons. */
function patroniVersionNumber(version: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) throw new InputError(`not a Patroni version: "${version}", expected e.g. 3.0.2`);
  return Number(m[1]) * 1e6 + Number(m[2]) * 1e3 + Number(m[3] ?? 0);
}

/**
 * Patroni 3.2 and later take 20 s as the smallest ttl: a shorter one (the balanced and fast
 * profiles) becomes 20, and unplanned failovers slow down accordingly. The note for apply, or null.
 */
export function patroniTtlNote(versions: string[], ttl: number): string | null {
  if (ttl >= 20) return null;
  const raising = versions.find((v) => patroniVersionNumber(v) >= 3_002_000);
  if (!raising) return null;
  return `Patroni ${raising} uses a ttl of at least 20 s: the inventory's ttl ${ttl} becomes 20, and an unplanned failover takes about 23 s`;
}

/**
 * A double-quoted apt.conf string. apt has no escape inside quotes, so whatever could end the
 * string or the line (", a line break, any control or non-ASCII character, and \ too) is written
 * %XX-encoded: the value is a URL, and apt reads URL escapes back.
 */
export function aptString(v: string): string {
  const enc = (c: string) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  return `"${[...v].map((c) => (/^[\x21\x23-\x5b\x5d-\x7e]$/.test(c) ? c : enc(c))).join('')}"`;
}

/** An address where a host:port or URL needs it: IPv6 in brackets. */
function bracketed(addr: string): string {
  return isIP(addr) === 6 ? `[${addr}]` : addr;
}

/** host:port, with brackets around an IPv6 address (URLs, Patroni and HAProxy addresses). */
function hostPort(addr: string, port: number): string {
  return `${bracketed(addr)}:${port}`;
}

function hbaAddress(addr: string): string {
  const v = isIP(addr);
  return v === 4 ? `${addr}/32` : v === 6 ? `${addr}/128` : addr;
}

function hbaRules(inv: Inventory): string[] {
  const u = inv.patroni.users;
  const members = inv.hostsWithRole('postgres').map((h) => hbaAddress(h.address));
  const rule = (db: string, user: string, addr: string) => `host ${db} ${user} ${addr} scram-sha-256`;
  return [
    // The OS user postgres (Patroni's local tools, pgBackRest) connects over the socket.
    `local all ${u.superuser} peer map=pgha`,
    rule('all', u.superuser, '127.0.0.1/32'),
    // Patroni reads the local timeline over a replication connection to localhost.
    rule('replication', u.replication, '127.0.0.1/32'),
    ...members.map((a) => rule('replication', u.replication, a)),
    ...members.map((a) => rule('all', u.rewind, a)),
    ...members.map((a) => rule('all', u.superuser, a)),
    ...inv.patroni.pg_hba,
  ];
}

function context(inv: Inventory, host: Host, dcs: Dcs) {
  const p = inv.patroni;
  const stanza = inv.pgbackrest.stanza;
  const pgVersion = inv.cluster.postgres_version;
  const etcdHosts = inv.hostsWithRole('etcd');
  const url = (h: Host, port: number) => `http://${hostPort(h.address, port)}`;
  const parameters: Record<string, string | number | boolean> = {
    wal_level: 'replica',
    hot_standby: 'on',
    wal_log_hints: 'on',
    archive_mode: 'on',
    archive_command: `${ARCHIVE_PUSH} %p`,
    max_wal_senders: 10,
    max_replication_slots: 10,
    wal_keep_size: '1GB',
  };
  // Names are case-insensitive in PostgreSQL: the inventory's spelling of a default replaces it.
  // The ones pgha manages are never taken from the inventory (validate refuses them too).
  for (const [name, value] of Object.entries(p.parameters)) {
    if (!(MANAGED_PARAMETERS as readonly string[]).includes(name.toLowerCase())) parameters[name.toLowerCase()] = value;
  }
  const postgresServers = inv.hostsWithRole('postgres').map((h, i) => ({
    name: h.name,
    index: i + 1,
    // pgBackRest runs `ssh USER@HOST` with it: bare, an IPv6 address too (ssh takes no brackets).
    hostAddress: h.address,
    address: hostPort(h.address, p.postgres_port),
    noloadbalance: h.tags.noloadbalance,
  }));
  return {
    cluster: inv.cluster,
    host: { name: host.name, address: host.address, tags: host.tags },
    dcs,
    timing: { ...inv.timing.patroni, haproxy: inv.timing.haproxy },
    users: p.users,
    secrets: inv.secrets,
    patroni: { ...p, restapiAddress: hostPort(host.address, p.restapi_port) },
    haproxy: inv.haproxy,
    packages: inv.packages,
    pgbackrest: inv.pgbackrest,
    repositoryHost: inv.repositoryHost,
    etcd: {
      clientPort: inv.etcd.client_port,
      dataDir: `/var/lib/etcd/${inv.cluster.name}`,
      peerUrl: url(host, inv.etcd.peer_port),
      clientUrl: url(host, inv.etcd.client_port),
      initialCluster: etcdHosts.map((h) => `${h.name}=${url(h, inv.etcd.peer_port)}`).join(','),
      token: `pgha-${inv.cluster.name}`,
      enableV2: dcs === 'etcd',
    },
    etcdClientHosts: etcdHosts.map((h) => hostPort(h.address, inv.etcd.client_port)),
    parameters: Object.entries(parameters).map(([key, value]) => ({ key, value })),
    restoreCommand: `pgbackrest --stanza=${stanza} archive-get %f %p`,
    replicaRestoreCommand: `pgbackrest --stanza=${stanza} --delta restore`,
    postgres: {
      // Patroni strips the brackets before it sets listen_addresses.
      listen: `${bracketed(host.address)},127.0.0.1:${p.postgres_port}`,
      connectAddress: hostPort(host.address, p.postgres_port),
      dataDir: `/var/lib/postgresql/${pgVersion}/main`,
      binDir: `/usr/lib/postgresql/${pgVersion}/bin`,
    },
    pgHba: hbaRules(inv),
    pgIdent: `pgha postgres ${p.users.superuser}`,
    postgresServers,
    replicaServers: postgresServers.filter((s) => !s.noloadbalance),
  };
}

/** Every file pgha writes on `hostName`, for its roles only. */
export function renderHost(inv: Inventory, hostName: string, opts: { dcs: Dcs }): RenderedFile[] {
  if (!inv.secrets) throw new InputError('rendering needs the secrets: load the inventory with its secrets file');
  const host = inv.host(hostName);
  const ctx = context(inv, host, opts.dcs);
  const files: RenderedFile[] = [];
  const add = (component: Component, path: string, template: string, extra: Partial<RenderedFile> & object = {}, more: object = {}) =>
    files.push({
      path,
      content: render(template, { ...ctx, ...more }),
      owner: 'root',
      group: 'root',
      mode: 0o644,
      component,
      secret: false,
      ...extra,
    });

  if (inv.packages.apt_proxy) add('apt', '/etc/apt/apt.conf.d/01pgha-proxy', 'apt-proxy.conf.hbs');
  if (inv.packages.postgresql_apt_repository) add('apt', '/etc/apt/sources.list.d/pgdg.sources', 'pgdg.sources.hbs');

  if (host.roles.has('etcd')) add('etcd', '/etc/default/etcd', 'etcd.default.hbs');
  if (host.roles.has('postgres')) {
    add('postgres-common', '/etc/postgresql-common/createcluster.d/pgha.conf', 'createcluster.conf.hbs');
    add('patroni', ARCHIVE_PUSH, 'pgbackrest-archive-push.sh.hbs', { mode: 0o755 });
    add('patroni', '/etc/patroni/config.yml', 'patroni.yml.hbs', { owner: 'postgres', group: 'postgres', mode: 0o600, secret: true, mask: PATRONI_MASK });
    add('pgbackrest', '/etc/pgbackrest.conf', 'pgbackrest-db.conf.hbs', { owner: 'postgres', group: 'postgres', mode: 0o640 });
    if (inv.repositoryHost) add('pgbackrest', PGBACKREST_SSH_CONFIG, 'pgbackrest-ssh.conf.hbs', { owner: 'postgres', group: 'postgres', mode: 0o600 });
  }
  if (host.roles.has('haproxy')) add('haproxy', '/etc/haproxy/haproxy.cfg', 'haproxy.cfg.hbs');
  if (host.roles.has('backup_repository')) {
    add('pgbackrest', '/etc/pgbackrest.conf', 'pgbackrest-repo.conf.hbs', { owner: 'pgbackrest', group: 'pgbackrest', mode: 0o640 });
  }
  // Scheduled backups run where the repository is: the repository host, or (shared) every
  // database host, where only the primary goes ahead.
  const shared = inv.pgbackrest.repository.type === 'shared';
  if (host.roles.has('backup_repository') || (shared && host.roles.has('postgres'))) {
    const backup = { user: shared ? 'postgres' : 'pgbackrest', onPrimaryOnly: shared };
    for (const type of ['full', 'diff'] as const) {
      const more = { type, backup, calendar: inv.pgbackrest.schedule[type] };
      add('backup-schedule', `/etc/systemd/system/pgha-backup-${type}.service`, 'backup.service.hbs', {}, more);
      add('backup-schedule', `/etc/systemd/system/pgha-backup-${type}.timer`, 'backup.timer.hbs', {}, more);
    }
  }
  return files;
}

/** Replaces every secret value in `text` with ********. */
export function maskSecrets(text: string, inv: Inventory): string {
  return new Masker(Object.values(inv.secrets ?? {})).mask(text);
}

/** A rendered file's content with its secrets masked: by structure first, then as text. */
export function maskedContent(f: RenderedFile, inv: Inventory): string {
  const m = f.mask?.(f.content);
  return maskSecrets(m && 'text' in m ? m.text : f.content, inv);
}

/**
 * Writes DIR/HOST/<absolute path> for every rendered file; returns the paths written. Each file
 * ends with its mode whether or not it existed (0600 for secret files with --show-secrets, else
 * 0644): it is written to a private temp file, given its mode, then renamed over the old one.
 */
export async function renderToDir(
  inv: Inventory,
  dir: string,
  opts: { dcs: Dcs; host?: string; showSecrets?: boolean },
): Promise<string[]> {
  const hosts = opts.host ? [inv.host(opts.host)] : inv.hosts;
  const written: string[] = [];
  for (const h of hosts) {
    for (const f of renderHost(inv, h.name, { dcs: opts.dcs })) {
      const out = join(dir, h.name, f.path);
      await mkdir(dirname(out), { recursive: true });
      const content = opts.showSecrets ? f.content : maskedContent(f, inv);
      const tmp = join(dirname(out), `.${basename(out)}.pgha-${randomBytes(6).toString('hex')}`);
      try {
        await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
        // chmod: the umask may have narrowed the mode given at creation.
        await chmod(tmp, f.secret && opts.showSecrets ? 0o600 : 0o644);
        await rename(tmp, out);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      written.push(out);
    }
  }
  return written;
}
