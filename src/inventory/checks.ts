// Rules that span several fields. They run on whatever sections parsed cleanly, so one
// `pgha validate` reports schema problems and cross-field problems together.
import * as z from 'zod';
import type { PathSeg, Problem } from './locate.js';
import { canonicalAddress, InventorySchema, ipVersion, MANAGED_PARAMETERS, TLS_PARAMETERS, TIMING_PROFILES, type HostConfig, type InventoryConfig } from './schema.js';

// Hosts by name in a Map: names come from the file, and a name like "constructor" or "__proto__"
// must never find something on a plain object's prototype.
type Sections = Partial<Omit<InventoryConfig, 'hosts'>> & { hosts?: Map<string, HostConfig>; hostNames?: string[] };

/** Parses each top-level section (and each host) on its own, keeping the ones that are valid. */
export function salvage(raw: unknown): Sections {
  const out: Record<string, unknown> = {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return out;
  const data = raw as Record<string, unknown>;
  const shape = InventorySchema.shape;
  for (const key of Object.keys(shape) as (keyof typeof shape)[]) {
    if (key === 'hosts') continue;
    const r = (shape[key] as z.ZodType).safeParse(data[key]);
    if (r.success) out[key] = r.data;
  }
  const hosts = data.hosts;
  const sections = out as Sections;
  if (hosts && typeof hosts === 'object' && !Array.isArray(hosts)) {
    const hostSchema = shape.hosts.valueType;
    sections.hosts = new Map();
    for (const [name, h] of Object.entries(hosts)) {
      const r = hostSchema.safeParse(h);
      if (r.success) sections.hosts.set(name, r.data);
    }
    sections.hostNames = Object.keys(hosts);
  }
  return sections;
}

export function effectiveTiming(s: Pick<InventoryConfig, 'timing' | 'patroni'>) {
  const profile = TIMING_PROFILES[s.timing];
  return {
    ttl: s.patroni.ttl ?? profile.ttl,
    loop_wait: s.patroni.loop_wait ?? profile.loop_wait,
    retry_timeout: s.patroni.retry_timeout ?? profile.retry_timeout,
  };
}

/** Why this many etcd members cannot make a cluster, or null. */
export function etcdCountProblem(count: number, allowSingle: boolean): string | null {
  if ((count === 1 && allowSingle) || (count >= 3 && count % 2 === 1)) return null;
  return `${count} member${count === 1 ? '' : 's'}, expected an odd number, at least 3 (1 only with etcd.allow_single_member: true)`;
}

export function crossFieldProblems(s: Sections): Problem[] {
  const problems: Problem[] = [];
  const add = (path: PathSeg[], message: string, at?: 'key') => problems.push({ path, message, at });
  const hostNames = s.hostNames ?? [];
  const defined = new Set(hostNames);

  // Addresses (host names are checked by the schema).
  if (s.hosts) {
    const byAddress = new Map<string, string>();
    for (const [name, h] of s.hosts) {
      const addr = canonicalAddress(h.address);
      const other = byAddress.get(addr);
      if (other) add(['hosts', name, 'address'], `"${h.address}" is also the address of ${other}, expected a unique address per host`);
      else byAddress.set(addr, name);
    }
  }

  // Roles.
  const roles = s.roles;
  const repoType = s.pgbackrest?.repository.type;
  if (roles) {
    for (const role of ['etcd', 'postgres', 'haproxy'] as const) {
      const seen = new Set<string>();
      roles[role].forEach((member, i) => {
        if (s.hostNames && !defined.has(member)) {
          add(['roles', role, i], `"${member}" is not defined under hosts, expected one of: ${hostNames.join(', ')}`);
        } else if (seen.has(member)) {
          add(['roles', role, i], `"${member}" is listed twice, expected each host once`);
        }
        seen.add(member);
      });
    }
    const etcdProblem = etcdCountProblem(new Set(roles.etcd).size, s.etcd?.allow_single_member ?? false);
    if (etcdProblem) add(['roles', 'etcd'], etcdProblem);
    const repo = roles.backup_repository;
    if (repoType === 'host') {
      if (repo === undefined) {
        add(['roles', 'backup_repository'], 'required key missing, expected the pgBackRest repository host (pgbackrest.repository.type is host)');
      } else if (s.hostNames && !defined.has(repo)) {
        add(['roles', 'backup_repository'], `"${repo}" is not defined under hosts, expected one of: ${hostNames.join(', ')}`);
      } else if (roles.postgres.includes(repo)) {
        add(['roles', 'backup_repository'], `"${repo}" is a postgres host, expected a separate host (its backups must outlive any database host)`);
      }
    } else if (repoType === 'shared' && repo !== undefined) {
      add(['roles', 'backup_repository'], 'not used with pgbackrest.repository.type shared, expected it removed');
    }
    if (s.patroni?.synchronous_mode && new Set(roles.postgres).size < 2) {
      add(['patroni', 'synchronous_mode'], 'needs at least 2 postgres hosts, expected false with a single postgres host');
    }
    if (s.hosts) {
      const hosts = s.hosts;
      const candidates = roles.postgres.filter((m) => hosts.has(m) && !hosts.get(m)!.tags.nofailover);
      if (roles.postgres.every((m) => hosts.has(m)) && candidates.length === 0) {
        add(['roles', 'postgres'], 'every postgres host is tagged nofailover, expected at least one failover candidate');
      }
    }
  }

  // Port collisions on each host, for the roles it has.
  if (roles && s.hosts && s.etcd && s.patroni && s.haproxy && s.ssh) {
    const collided = new Set<string>();
    for (const [name, h] of s.hosts) {
      const ports: { port: number; path: PathSeg[] }[] = [
        h.ssh?.port !== undefined
          ? { port: h.ssh.port, path: ['hosts', name, 'ssh', 'port'] }
          : { port: s.ssh.port ?? 22, path: ['ssh', 'port'] },
      ];
      if (roles.etcd.includes(name)) {
        ports.push({ port: s.etcd.client_port, path: ['etcd', 'client_port'] }, { port: s.etcd.peer_port, path: ['etcd', 'peer_port'] });
      }
      if (roles.postgres.includes(name)) {
        ports.push(
          { port: s.patroni.postgres_port, path: ['patroni', 'postgres_port'] },
          { port: s.patroni.restapi_port, path: ['patroni', 'restapi_port'] },
        );
      }
      if (roles.haproxy.includes(name)) {
        ports.push(
          { port: s.haproxy.primary_port, path: ['haproxy', 'primary_port'] },
          { port: s.haproxy.replicas_port, path: ['haproxy', 'replicas_port'] },
          { port: s.haproxy.stats_port, path: ['haproxy', 'stats_port'] },
        );
      }
      // The exporters of monitoring: true (ports in src/components/monitoring/prometheus.ts).
      if (s.monitoring) {
        ports.push({ port: 9100, path: ['monitoring'] });
        if (roles.postgres.includes(name)) ports.push({ port: 9187, path: ['monitoring'] });
        if (roles.haproxy.includes(name)) ports.push({ port: 8405, path: ['monitoring'] });
      }
      if (s.pgbouncer && roles.haproxy.includes(name)) ports.push({ port: s.pgbouncer.port, path: ['pgbouncer', 'port'] });
      const byPort = new Map<number, PathSeg[]>();
      for (const p of ports) {
        const first = byPort.get(p.port);
        if (!first) {
          byPort.set(p.port, p.path);
          continue;
        }
        const key = p.path.join('.');
        if (collided.has(key)) continue;
        collided.add(key);
        add(p.path, `port ${p.port} is also ${first.join('.')} on ${name}, expected a different port per service on a host`);
      }
    }
  }

  // A certificate renewed every run would be no certificate kept.
  if (s.tls && s.tls.enabled && s.tls.renew_before_days >= s.tls.cert_days) {
    add(['tls', 'renew_before_days'], `${s.tls.renew_before_days} days is not less than tls.cert_days (${s.tls.cert_days}), expected fewer days than a certificate is valid`);
  }

  // Timing overrides must keep Patroni's rule.
  if (s.patroni && s.timing) {
    const t = effectiveTiming({ timing: s.timing, patroni: s.patroni });
    if (t.loop_wait + 2 * t.retry_timeout > t.ttl) {
      const field = (['ttl', 'loop_wait', 'retry_timeout'] as const).find((f) => s.patroni![f] !== undefined) ?? 'ttl';
      add(
        ['patroni', field],
        `loop_wait ${t.loop_wait} + 2*retry_timeout ${t.retry_timeout} > ttl ${t.ttl}, expected loop_wait + 2*retry_timeout <= ttl`,
      );
    }
    // PostgreSQL reads parameter names case-insensitively (so does Patroni): compare them so.
    const seen = new Map<string, string>();
    for (const p of Object.keys(s.patroni.parameters)) {
      const name = p.toLowerCase();
      if ((MANAGED_PARAMETERS as readonly string[]).includes(name)) {
        add(['patroni', 'parameters', p], `${name} is set by pgha itself, expected it removed`, 'key');
      } else if ((s.tls?.enabled ?? true) && (TLS_PARAMETERS as readonly string[]).includes(name)) {
        add(['patroni', 'parameters', p], `${name} is set by pgha itself while tls is on (the host's certificate), expected it removed`, 'key');
      } else if (seen.has(name)) {
        add(['patroni', 'parameters', p], `the same parameter as "${seen.get(name)}" (names are case-insensitive), expected each parameter once`, 'key');
      } else {
        seen.set(name, p);
      }
    }
  }
  usersAndDatabases(s, add);
  if (s.vip && s.hosts) {
    for (const [name, h] of s.hosts) if (canonicalAddress(h.address) === canonicalAddress(s.vip.address)) add(['vip', 'address'], `${s.vip.address} is the address of ${name}, expected an unused address`);
    if (ipVersion(s.vip.address) === 4 && s.vip.prefix > 32) add(['vip', 'prefix'], `${s.vip.prefix} is longer than an IPv4 address, expected 1-32`);
  }
  const hooks = new Map<string, number>();
  (s.notifications?.webhooks ?? []).forEach((w, i) => {
    if (hooks.has(w.name)) add(['notifications', 'webhooks', i, 'name'], `webhook ${w.name} is also webhooks[${hooks.get(w.name)}], expected each name once`);
    else hooks.set(w.name, i);
  });
  return problems;
}

/** Users and databases: unique names, none of pgha's own, owners that exist, options that agree. */
function usersAndDatabases(s: Sections, add: (path: PathSeg[], message: string) => void): void {
  const users = s.users ?? [];
  const own = s.patroni ? Object.entries(s.patroni.users) : [];
  const byName = new Map<string, number>();
  users.forEach((u, i) => {
    if (byName.has(u.name)) add(['users', i, 'name'], `user ${u.name} is also users[${byName.get(u.name)}], expected each user once`);
    else byName.set(u.name, i);
    const mine = own.find(([, name]) => name === u.name);
    if (mine) add(['users', i, 'name'], `${u.name} is pgha's own ${mine[0]} role (patroni.users.${mine[0]}), expected another name`);
    for (const [yes, no] of [['LOGIN', 'NOLOGIN'], ['SUPERUSER', 'NOSUPERUSER'], ['CREATEDB', 'NOCREATEDB'], ['CREATEROLE', 'NOCREATEROLE'], ['INHERIT', 'NOINHERIT'], ['REPLICATION', 'NOREPLICATION'], ['BYPASSRLS', 'NOBYPASSRLS']] as const) {
      if (u.options.includes(yes) && u.options.includes(no)) add(['users', i, 'options'], `both ${yes} and ${no}, expected one of them`);
    }
  });
  const dbs = new Map<string, number>();
  (s.databases ?? []).forEach((d, i) => {
    if (dbs.has(d.name)) add(['databases', i, 'name'], `database ${d.name} is also databases[${dbs.get(d.name)}], expected each database once`);
    else dbs.set(d.name, i);
    if (['postgres', 'template0', 'template1'].includes(d.name)) add(['databases', i, 'name'], `${d.name} is PostgreSQL's own database, expected another name`);
    if (d.state === 'absent' || d.owner === undefined || d.owner === s.patroni?.users.superuser) return;
    const owner = users.find((u) => u.name === d.owner);
    if (!owner) add(['databases', i, 'owner'], `${d.owner} is not a user of users:, expected one of: ${[...new Set([s.patroni?.users.superuser ?? 'postgres', ...users.filter((u) => u.state === 'present').map((u) => u.name)])].join(', ')}`);
    else if (owner.state === 'absent') add(['databases', i, 'owner'], `user ${d.owner} is marked state: absent, expected a user that stays`);
  });
}
