// Public API of the inventory (other modules import only from here):
//
//   loadInventory(file: string, opts?: { secrets?: boolean | 'optional' }): Promise<Inventory>
//     Reads and validates an inventory (and, unless `secrets: false`, its secrets file; with
//     'optional' a missing secrets file is no problem: `secretsMissing` says so).
//     Contacts no host. Throws InputError whose `lines` hold every problem, one per line:
//     `FILE:LINE:COL: path.to.field: what is wrong, expected ...`.
//   Inventory            fully resolved (defaults applied), see the interface below
//   Host, Role, Secrets  its parts
//   InventorySchema      the zod schema, the single source of defaults
//   inventoryJsonSchema() the JSON Schema generated from it (`pgha schema`)
//   TIMING_PROFILES      the safe/balanced/fast timing numbers
//   MANAGED_PARAMETERS   PostgreSQL parameters pgha sets itself
//   addressProblem() aptProxyProblem() ... the single-value rules, for init's prompts and flags
import { open, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { crossFieldProblems, effectiveTiming, salvage } from './checks.js';
import { parseYaml, problemLine, yamlErrorLines, yamlValue, zodProblems, type PathSeg, type Problem } from './locate.js';
import { InventorySchema, SecretsSchema, TIMING_PROFILES, type InventoryConfig, type Secrets, type TimingProfile } from './schema.js';

export { InventorySchema, SecretsSchema, TIMING_PROFILES, inventoryJsonSchema, MANAGED_PARAMETERS, CLUSTER_NAME_RE, POSTGRES_VERSIONS } from './schema.js';
export { SSH_DEFAULTS } from './schema.js';
export { addressProblem, aptProxyProblem, canonicalAddress, ipVersion, cidrProblem, inCidr, isAddressSyntax, HOST_NAME_RE, REPOSITORY_PATH_RE, SSH_USER_RE } from './schema.js';
export { etcdCountProblem } from './checks.js';
export { secretValues, ROLE_OPTIONS, SQL_NAME_RE } from './schema.js';
export type { InventoryConfig, Secrets, TimingProfile, TlsSettings } from './schema.js';

export type Role = 'etcd' | 'postgres' | 'haproxy' | 'backup_repository';

export interface Host {
  name: string;
  address: string;
  /** user, port, privateKey and jump as the inventory sets them; unset ones come from ~/.ssh/config or the defaults when connecting. */
  ssh: {
    user?: string;
    port?: number;
    /** Absolute path. */
    privateKey?: string;
    /** As written (ProxyJump syntax, or none). */
    jump?: string;
    /** Absolute path of the OpenSSH client config to read, or null. */
    configFile: string | null;
    sudo: boolean;
    /** Absolute path. */
    knownHosts: string;
    hostKeyPolicy: 'strict' | 'accept-new';
    /** Seconds. */
    connectTimeout: number;
    /** Seconds. */
    commandTimeout: number;
    /** Seconds status's connections stay open after it (0: closed at once). */
    persist: number;
  };
  tags: { nofailover: boolean; noloadbalance: boolean; nosync: boolean };
  roles: Set<Role>;
}

export interface Timing {
  profile: TimingProfile;
  /** Seconds (the profile's, or the inventory's patroni.* overrides), as the inventory asks them (see patroni/timing.ts for what Patroni makes of them). */
  patroni: { ttl: number; loop_wait: number; retry_timeout: number };
  /** The inventory sets patroni.ttl, loop_wait or retry_timeout itself. */
  overridden: boolean;
  haproxy: { inter_ms: number; fastinter_ms: number; fall: number; rise: number };
}

/**
 * A validated inventory. Section objects (cluster, etcd, patroni, haproxy, pgbackrest, packages)
 * keep the YAML's snake_case keys, with every default applied.
 */
export interface Inventory {
  /** Absolute path of the inventory file. */
  file: string;
  /** Its directory: relative paths in the inventory are resolved against it. */
  dir: string;
  cluster: InventoryConfig['cluster'];
  hosts: Host[];
  roles: InventoryConfig['roles'];
  timing: Timing;
  etcd: InventoryConfig['etcd'];
  patroni: InventoryConfig['patroni'];
  haproxy: InventoryConfig['haproxy'];
  pgbackrest: InventoryConfig['pgbackrest'];
  packages: InventoryConfig['packages'];
  /** TLS on every link (`tls.enabled`), and how pgha issues the certificates. */
  tls: InventoryConfig['tls'];
  /** Database users and databases pgha manages on the leader (src/components/databases). */
  users: InventoryConfig['users'];
  databases: InventoryConfig['databases'];
  /** PgBouncer on the HAProxy hosts (src/components/pgbouncer), or null. */
  pgbouncer: InventoryConfig['pgbouncer'];
  /** The leader's virtual IP (src/components/vip), or null. */
  vip: InventoryConfig['vip'];
  /** Prometheus endpoints (src/components/monitoring). */
  monitoring: boolean;
  /** Role-change webhooks (src/components/notifications). */
  notifications: InventoryConfig['notifications'];
  /** Absolute path of the secrets file. */
  secretsFile: string;
  /** Present when loaded with secrets (the default). Never print these. */
  secrets?: Secrets;
  /** Loaded with `secrets: 'optional'` and the secrets file does not exist. */
  secretsMissing?: boolean;
  /** The repository host (pgbackrest.repository.type host), else undefined. */
  repositoryHost?: Host;
  /** Throws on an unknown name. */
  host(name: string): Host;
  /** Hosts with a role, in the order the inventory lists them under roles. */
  hostsWithRole(role: Role): Host[];
}

function expandPath(p: string, dir: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(dir, p);
}

/** Reads and validates an inventory file; see the module comment. */
export async function loadInventory(file: string, opts: { secrets?: boolean | 'optional'; cwd?: string } = {}): Promise<Inventory> {
  // `cwd`: where a relative `file` is, when that is not this process's directory (the keeper serving a status).
  const abs = resolve(opts.cwd ?? '.', file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read inventory ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const parsed = parseYaml(file, text);
  const fail = (lines: string[]) => {
    const n = lines.length;
    return new InputError(`${file}: ${n} problem${n === 1 ? '' : 's'}`, lines);
  };
  if (parsed.doc.errors.length) throw fail(yamlErrorLines(parsed));
  const data = yamlValue(parsed);
  if ('lines' in data) throw fail(data.lines);

  const raw = data.value;
  const problems: Problem[] = [];
  const result = InventorySchema.safeParse(raw);
  if (!result.success) problems.push(...zodProblems(InventorySchema, result.error.issues, raw));
  problems.push(...crossFieldProblems(salvage(raw)));
  const lines = dedupe(problems.map((p) => problemLine(parsed, p)));

  const dir = dirname(abs);
  const config = result.success ? result.data : undefined;
  const secretsFile = expandPath(config?.secrets ?? 'secrets.yml', dir);
  // Named as the operator wrote them, next to the inventory path they gave.
  const shown = (p: string, abs: string) => (isAbsolute(p) || p.startsWith('~') ? abs : join(dirname(file), p));
  const where = (path: PathSeg[]) => problemLine(parsed, { path, message: '' }).replace(/: $/, '');
  let secrets: Secrets | undefined;
  let secretsMissing = false;
  if (config && opts.secrets !== false) {
    if (opts.secrets === 'optional' && !(await exists(secretsFile))) secretsMissing = true;
    else {
      const s = await loadSecrets(secretsFile, shown(config.secrets, secretsFile), where(['secrets']));
      if (Array.isArray(s)) lines.push(...s);
      else {
        secrets = s;
        // A user that logs in needs its password; the message names the key, never a value.
        config.users.forEach((u, i) => {
          if (u.state === 'present' && u.options.includes('LOGIN') && !secrets?.users?.[u.name]) {
            lines.push(`${where(['users', i, 'name'])}: LOGIN user ${u.name} has no password in the secrets file ${shown(config.secrets, secretsFile)}, expected users.${u.name}: PASSWORD there`);
          }
        });
        if (config.pgbouncer && !secrets.pgbouncer_password) {
          lines.push(`${where(['pgbouncer'])}: PgBouncer needs the password of its auth_query role, expected pgbouncer_password: PASSWORD in the secrets file ${shown(config.secrets, secretsFile)}`);
        }
        const hooks = config.notifications.webhooks.map((w) => w.name);
        for (const name of Object.keys(secrets.webhook_headers ?? {})) {
          if (!hooks.includes(name)) lines.push(`${where(['secrets'])}: the secrets file has webhook_headers.${name}, but notifications.webhooks has no webhook named ${name}, expected one of: ${hooks.join(', ') || '(none)'}`);
        }
      }
    }
  }
  if (config) {
    // Read at connect time; a missing file is fine (accept-new creates it), anything but a file is not.
    const knownHosts = expandPath(config.ssh.known_hosts, dir);
    const problem = await notAFile(knownHosts, shown(config.ssh.known_hosts, knownHosts), 'known_hosts file');
    if (problem) lines.push(`${where(['ssh', 'known_hosts'])}: ${problem}, expected an OpenSSH known_hosts file (or none yet)`);
  }
  if (lines.length || !config) throw fail(lines);
  return { ...build(abs, dir, config, secretsFile, secrets), ...(secretsMissing ? { secretsMissing } : {}) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Unique lines, in file order (FILE:LINE:COL). */
function dedupe(lines: string[]): string[] {
  const pos = (l: string) => (/:(\d+):(\d+): /.exec(l) ?? ['', '0', '0']).slice(1).map(Number);
  return [...new Set(lines)].sort((a, b) => {
    const [la, ca] = pos(a);
    const [lb, cb] = pos(b);
    return la - lb || ca - cb;
  });
}

/** Why an existing path cannot be read as a file (a directory, no permission), or null. */
async function notAFile(path: string, shown: string, what: string): Promise<string | null> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return null; // missing: the caller decides
  }
  if (st.isDirectory()) return `${what} ${shown} is a directory`;
  if (!st.isFile()) return `${what} ${shown} is not a regular file`;
  try {
    await (await open(path, 'r')).close();
  } catch (err) {
    return `${what} ${shown} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  return null;
}

/** The secrets, or problem lines. Values never appear in messages. */
async function loadSecrets(path: string, shown: string, where: string): Promise<Secrets | string[]> {
  let mode: number;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    return [`${where}: secrets file ${shown} not found, expected a YAML file with the passwords (pgha init writes one)`];
  }
  const unreadable = await notAFile(path, shown, 'secrets file');
  if (unreadable) return [`${where}: ${unreadable}, expected a YAML file with the passwords (pgha init writes one)`];
  if (mode & 0o077) {
    const m = mode.toString(8).padStart(4, '0');
    return [`${where}: secrets file ${shown} has mode ${m}, expected 0600 (no access for group and others); fix: chmod 600 ${shown}`];
  }
  const p = parseYaml(shown, await readFile(path, 'utf8'));
  if (p.doc.errors.length) return yamlErrorLines(p, { quiet: true });
  const data = yamlValue(p);
  if ('lines' in data) return data.lines;
  const raw = data.value;
  const r = SecretsSchema.safeParse(raw);
  if (!r.success) return zodProblems(SecretsSchema, r.error.issues, raw, false).map((prob) => problemLine(p, prob));
  return r.data;
}

function build(file: string, dir: string, c: InventoryConfig, secretsFile: string, secrets?: Secrets): Inventory {
  const hosts: Host[] = Object.entries(c.hosts).map(([name, h]) => {
    const roles = new Set<Role>();
    for (const role of ['etcd', 'postgres', 'haproxy'] as const) if (c.roles[role].includes(name)) roles.add(role);
    if (c.pgbackrest.repository.type === 'host' && c.roles.backup_repository === name) roles.add('backup_repository');
    return {
      name,
      address: h.address,
      ssh: {
        user: h.ssh?.user ?? c.ssh.user,
        port: h.ssh?.port ?? c.ssh.port,
        privateKey: (h.ssh?.private_key ?? c.ssh.private_key) === undefined ? undefined : expandPath((h.ssh?.private_key ?? c.ssh.private_key)!, dir),
        jump: h.ssh?.jump ?? c.ssh.jump,
        configFile: c.ssh.config_file === null ? null : expandPath(c.ssh.config_file, dir),
        sudo: c.ssh.sudo,
        knownHosts: expandPath(c.ssh.known_hosts, dir),
        hostKeyPolicy: c.ssh.host_key_policy,
        connectTimeout: c.ssh.connect_timeout,
        commandTimeout: c.ssh.command_timeout,
        persist: c.ssh.persist,
      },
      tags: { ...h.tags },
      roles,
    };
  });
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const host = (name: string): Host => {
    const h = byName.get(name);
    if (!h) throw new InputError(`no host named ${name} in ${file}`);
    return h;
  };
  const hostsWithRole = (role: Role): Host[] => {
    if (role === 'backup_repository') return hosts.filter((h) => h.roles.has(role));
    return c.roles[role].map(host);
  };
  return {
    file,
    dir,
    cluster: c.cluster,
    hosts,
    roles: c.roles,
    timing: {
      profile: c.timing,
      patroni: effectiveTiming(c),
      overridden: c.patroni.ttl !== undefined || c.patroni.loop_wait !== undefined || c.patroni.retry_timeout !== undefined,
      haproxy: { ...TIMING_PROFILES[c.timing].haproxy },
    },
    etcd: c.etcd,
    patroni: c.patroni,
    haproxy: c.haproxy,
    pgbackrest: c.pgbackrest,
    packages: c.packages,
    tls: c.tls,
    users: c.users,
    databases: c.databases,
    notifications: c.notifications,
    monitoring: c.monitoring,
    vip: c.vip,
    pgbouncer: c.pgbouncer,
    secretsFile,
    secrets,
    repositoryHost: hosts.find((h) => h.roles.has('backup_repository')),
    host,
    hostsWithRole,
  };
}
