// Pure: answers in, file contents out. The inventory mirrors inventories/example.yml (same keys,
// same order, same comments) so an operator can read and edit what `pgha init` wrote.
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { inCidr } from '../../inventory/index.js';
import type { InitAnswers } from './answers.js';

/** The PostgreSQL majors Debian itself ships (12: 15, 13: 17); others come from the PostgreSQL apt repository. */
const DEBIAN_MAJORS = [15, 17];

export interface RenderRefs {
  /** $schema hint, relative to the inventory's directory. */
  schema: string;
  /** Secrets file, relative to the inventory's directory. */
  secrets: string;
  /** known_hosts file, relative to the inventory's directory. */
  knownHosts: string;
}

export const SECRET_KEYS = ['superuser_password', 'replication_password', 'rewind_password', 'restapi_password'] as const;
export type Secrets = Record<(typeof SECRET_KEYS)[number], string>;

/** 32 characters from 24 random bytes (192 bits), letters, digits, - and _: safe in YAML, URLs and pgpass. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

export function generateSecrets(): Secrets {
  return Object.fromEntries(SECRET_KEYS.map((k) => [k, generatePassword()])) as Secrets;
}

// A YAML scalar, quoted only when it has to be.
function s(v: string | number | boolean | null): string {
  return stringify(v).trimEnd();
}

function line(text: string, comment?: string, width = 27): string {
  return comment ? `${text.padEnd(width - 1)} # ${comment}` : text;
}

const list = (xs: string[]) => `[${xs.map(s).join(', ')}]`;

export function renderInventory(a: InitAnswers, refs: RenderRefs): string {
  const dbHosts = a.roles.postgres.length;
  const out: string[] = [];
  out.push(`# yaml-language-server: $schema=${refs.schema}`);
  out.push('#');
  out.push(`# The pgha cluster "${a.clusterName}": ${dbHosts} database host${dbHosts === 1 ? '' : 's'} under Patroni,`);
  out.push(
    a.repository.type === 'host'
      ? `# with a dedicated pgBackRest repository host (${a.repository.host}). Written by \`pgha init\`.`
      : `# with a pgBackRest repository on a shared path (${a.repository.path}). Written by \`pgha init\`.`,
  );
  out.push("# Every key not written here takes its default from pgha's schema (`pgha schema`, README).");
  out.push('');
  out.push('cluster:');
  out.push(line(`  name: ${s(a.clusterName)}`, "Patroni scope (the cluster's name in etcd); letters, digits, - and _"));
  out.push(
    a.postgresVersion === null
      ? "  # postgres_version: 17   # PostgreSQL major; left out, the hosts' Debian release decides (15 on Debian 12, 17 on Debian 13)"
      : line(
          `  postgres_version: ${a.postgresVersion}`,
          DEBIAN_MAJORS.includes(a.postgresVersion)
            ? 'PostgreSQL major version (Debian 12 ships 15, Debian 13 ships 17)'
            : 'PostgreSQL major version (from the PostgreSQL apt repository: Debian 12 ships 15, Debian 13 ships 17)',
        ),
  );
  out.push('');
  out.push('# Passwords (superuser, replication, rewind, Patroni REST API) live only in this file,');
  out.push('# relative to this inventory. It must be mode 0600. Never commit it.');
  out.push(`secrets: ${s(refs.secrets)}`);
  out.push('');
  out.push('ssh:');
  out.push(line(`  user: ${s(a.ssh.user)}`, 'an unprivileged user with passwordless sudo (or root)'));
  out.push(`  port: ${a.ssh.port}`);
  if (a.ssh.privateKey !== null) out.push(`  private_key: ${s(a.ssh.privateKey)}`);
  else out.push(line('  # private_key: ~/.ssh/id_ed25519', "unset: ~/.ssh/config's IdentityFile, else the ssh-agent, then ~/.ssh/id_*", 37));
  out.push(line('  # jump: admin@bastion:22', 'jump host(s) when the hosts are reachable only through a bastion', 37));
  out.push(line('  sudo: true', 'run privileged steps through `sudo -n`'));
  out.push(line(`  known_hosts: ${s(refs.knownHosts)}`, 'relative to this inventory; pgha checks every host key against it'));
  out.push(line('  host_key_policy: strict', 'strict: unknown or changed keys are refused; accept-new: record unknown keys'));
  out.push(line('  connect_timeout: 10', 'seconds'));
  out.push(line('  command_timeout: 600', 'seconds, for any single command on a host'));
  out.push('');
  out.push('hosts:');
  for (const h of a.hosts) {
    out.push(`  ${h.name}:`);
    out.push(`    address: ${s(h.address)}`);
  }
  out.push(line('    # ssh:', 'per-host overrides of user, port, private_key, jump'));
  out.push('    #   port: 2222');
  out.push('');
  out.push('roles:');
  const roleLines: [string, string][] = [
    [`  etcd: ${list(a.roles.etcd)}`, 'an odd number, at least 3 (1 only with etcd.allow_single_member)'],
    [`  postgres: ${list(a.roles.postgres)}`, 'PostgreSQL under Patroni'],
    [`  haproxy: ${list(a.roles.haproxy)}`, 'client entry points'],
  ];
  if (a.repository.type === 'host') roleLines.push([`  backup_repository: ${s(a.repository.host)}`, 'the pgBackRest repository host']);
  const rw = Math.max(27, ...roleLines.map(([t]) => t.length + 2));
  for (const [t, c] of roleLines) out.push(line(t, c, rw));
  if (a.repository.type === 'shared') {
    out.push('  # backup_repository: none: the repository is a shared path (pgbackrest.repository below)');
  }
  out.push('');
  out.push("# Timing profile: sets Patroni's ttl/loop_wait/retry_timeout and HAProxy's check timings together.");
  out.push("#   safe:     Patroni's defaults (ttl 30, loop_wait 10, retry_timeout 10): failover in 25-35 s");
  out.push('#   balanced: the default (ttl 12, loop_wait 2, retry_timeout 5): failover in ~13-17 s');
  out.push('#   fast:     ttl 7, loop_wait 1, retry_timeout 3: failover in ~9-12 s, more false alarms');
  out.push('timing: balanced');
  out.push('');
  out.push('etcd:');
  out.push(`  client_port: ${a.ports.etcdClient}`);
  out.push(`  peer_port: ${a.ports.etcdPeer}`);
  out.push('');
  const w = 37;
  out.push('patroni:');
  out.push(`  restapi_port: ${a.ports.restapi}`);
  out.push(`  postgres_port: ${a.ports.postgres}`);
  out.push(line('  maximum_lag_on_failover: 1048576', 'bytes; a replica further behind is never promoted', w));
  out.push(
    line(
      `  synchronous_mode: ${a.synchronousMode}`,
      a.synchronousMode ? 'a commit waits for one replica: no acknowledged write is lost on failover' : 'true: a commit waits for one replica (no loss on failover, slower writes)',
      w,
    ),
  );
  out.push(line('  failsafe_mode: true', 'the primary keeps running while etcd has no quorum, if all members agree', w));
  out.push(line('  parameters:', 'PostgreSQL parameters, managed by Patroni', w));
  out.push('    max_connections: 200');
  out.push('    shared_buffers: 256MB');
  if (a.clientNetworks.length === 0) {
    out.push(line('  pg_hba: []', "extra rules, after pgha's own (replication, Patroni, pgBackRest)", w));
    out.push('  #  - host all all 10.0.10.0/24 scram-sha-256');
  } else {
    out.push(line('  pg_hba:', "extra rules, after pgha's own (replication, Patroni, pgBackRest)", w));
    const hw = Math.max(w + 6, ...a.clientNetworks.map((n) => `    - host all all ${n} scram-sha-256`.length + 2));
    for (const n of a.clientNetworks) out.push(line(`    - host all all ${n} scram-sha-256`, 'clients of this network (direct connections)', hw));
    // Through HAProxy a client's connection arrives from the HAProxy host's address.
    const byName = new Map(a.hosts.map((h) => [h.name, h.address]));
    for (const name of a.roles.haproxy) {
      const addr = byName.get(name);
      if (!addr || a.clientNetworks.some((n) => inCidr(addr, n))) continue;
      const cidr = addr.includes(':') ? `${addr}/128` : /^[0-9.]+$/.test(addr) ? `${addr}/32` : addr;
      out.push(line(`    - host all all ${cidr} scram-sha-256`, `clients through HAProxy on ${name} arrive from its address`, hw));
    }
  }
  out.push('');
  out.push('haproxy:');
  out.push(line(`  primary_port: ${a.ports.haproxyPrimary}`, 'read-write: always the current leader', 27));
  out.push(line(`  replicas_port: ${a.ports.haproxyReplicas}`, 'read-only: streaming replicas', 27));
  out.push(`  stats_port: ${a.ports.haproxyStats}`);
  out.push('  maxconn: 1000');
  out.push('');
  out.push('pgbackrest:');
  out.push(`  stanza: ${s(a.clusterName)}`);
  out.push('  repository:');
  if (a.repository.type === 'host') {
    out.push(line('    type: host', 'host: the backup_repository host, over SSH; shared: a path mounted on every database host'));
    out.push('    path: /var/lib/pgbackrest');
  } else {
    out.push(line('    type: shared', 'shared: a path mounted on every database host; host: a backup_repository host, over SSH'));
    out.push(`    path: ${s(a.repository.path)}`);
  }
  out.push(line('  retention_full: 2', 'full backups kept'));
  out.push(line('  schedule:', 'systemd OnCalendar expressions, on the repository host'));
  out.push('    full: Sun *-*-* 01:00:00');
  out.push('    diff: Mon..Sat *-*-* 01:00:00');
  out.push('');
  out.push('packages:');
  out.push(line(`  apt_proxy: ${a.aptProxy === null ? 'null' : s(a.aptProxy)}`, 'e.g. http://10.0.10.1:3142'));
  out.push(
    line(
      `  postgresql_apt_repository: ${a.postgresVersion !== null && !DEBIAN_MAJORS.includes(a.postgresVersion)}`,
      'true: use the PostgreSQL project\'s apt repository (newer versions)',
      37,
    ),
  );
  return out.join('\n') + '\n';
}

export function renderSecrets(clusterName: string, secrets: Secrets): string {
  const out = [
    `# pgha secrets for the cluster "${clusterName}", written by \`pgha init\`.`,
    '# Keep this file mode 0600 and out of version control.',
  ];
  for (const k of SECRET_KEYS) out.push(`${k}: ${s(secrets[k])}`);
  return out.join('\n') + '\n';
}
