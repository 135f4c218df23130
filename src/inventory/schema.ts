// The inventory's shape and every default, in one place. The JSON Schema (`pgha schema`,
// schema/inventory.schema.json) and the README's reference are derived from this file.
import { isIP } from 'node:net';
import { z } from 'zod';

// Host names become Patroni member names and etcd member names: keep them DNS-label-like.
export const HOST_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function isValidAddress(s: string): boolean {
  return isIP(s) !== 0 || (DNS_NAME_RE.test(s) && !/^[0-9.]+$/.test(s));
}

export const CLUSTER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const POSTGRES_VERSIONS = { min: 13, max: 17 } as const;

const port = z.int().min(1).max(65535);
const seconds = (def: number, desc: string) => z.int().min(1).max(86400).default(def).describe(desc);
const address = z
  .string()
  .refine(isValidAddress, { message: 'not a valid address, expected an IPv4 or IPv6 address or a host name' });

/**
 * Timing profiles: Patroni's loop timings and HAProxy's health-check timings move together.
 * An unplanned failover (leader cut off or powered off) waits for the leader lock to expire:
 * ttl - loop_wait..ttl after the fault, then ~2 s (Patroni asks every member, the lost one times
 * out) and ~1-2 s to promote and route. HAProxy: rise 1, because Patroni answers 200 on /primary
 * only while it holds the lock, so one answer is conclusive; DOWN servers are checked every
 * fastinter, so a new leader is routed within fastinter of its promotion.
 */
export const TIMING_PROFILES = {
  // Patroni's own defaults: the most patient with a slow network or a loaded etcd; failover 25-35 s.
  safe: { ttl: 30, loop_wait: 10, retry_timeout: 10, haproxy: { inter_ms: 2000, fastinter_ms: 500, fall: 3, rise: 1 } },
  // The default: a leader cut off for 10-12 s is replaced; failover in ~13-17 s.
  balanced: { ttl: 12, loop_wait: 2, retry_timeout: 5, haproxy: { inter_ms: 2000, fastinter_ms: 500, fall: 3, rise: 1 } },
  // Failover in ~9-12 s, at the price of a failover whenever the leader is cut off for 6-7 s.
  fast: { ttl: 7, loop_wait: 1, retry_timeout: 3, haproxy: { inter_ms: 1000, fastinter_ms: 250, fall: 2, rise: 1 } },
} as const;
export type TimingProfile = keyof typeof TIMING_PROFILES;

/** An apt proxy URL (also what `pgha init --apt-proxy` accepts). */
export const aptProxy = z.url({ protocol: /^https?$/ });

const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a role name: a-z, 0-9 and _');
// systemd OnCalendar expression: one line.
const calendar = z.string().regex(/^[^\n\r]+$/, 'expected a one-line systemd OnCalendar expression');

const hostSsh = z
  .strictObject({
    user: z.string().min(1).optional().describe('SSH user for this host (default: ssh.user)'),
    port: port.optional().describe('SSH port for this host (default: ssh.port)'),
    private_key: z.string().min(1).optional().describe('private key for this host (default: ssh.private_key)'),
  })
  .describe('per-host overrides of the global ssh settings');

const tags = z
  .strictObject({
    nofailover: z.boolean().default(false).describe('true: Patroni never promotes this member'),
    noloadbalance: z.boolean().default(false).describe("true: HAProxy's replicas port never routes here"),
    nosync: z.boolean().default(false).describe('true: never chosen as the synchronous standby'),
  })
  .describe('Patroni member tags');

const host = z.strictObject({
  address: address.describe('IPv4/IPv6 address or host name the other hosts and pgha use to reach this host'),
  ssh: hostSsh.optional(),
  tags: tags.prefault({}),
});

const hostList = z.array(z.string()).min(1);

export const InventorySchema = z
  .strictObject({
    cluster: z
      .strictObject({
        name: z
          .string()
          .regex(CLUSTER_NAME_RE, 'expected letters, digits, - and _ (at most 63)')
          .describe("the Patroni scope (the cluster's name in etcd)"),
        postgres_version: z.int().min(POSTGRES_VERSIONS.min).max(POSTGRES_VERSIONS.max).default(15).describe('PostgreSQL major version'),
      })
      .describe('the cluster'),
    secrets: z
      .string()
      .min(1)
      .default('secrets.yml')
      .describe('the secrets file (passwords), relative to the inventory; must be mode 0600'),
    ssh: z
      .strictObject({
        user: z.string().min(1).default('root').describe('SSH user: root, or a user with passwordless sudo'),
        port: port.default(22).describe('SSH port'),
        private_key: z.string().min(1).default('~/.ssh/id_ed25519').describe('private key file, relative to the inventory; ~ is $HOME'),
        sudo: z.boolean().default(true).describe('run privileged steps through `sudo -n` (ignored for root)'),
        known_hosts: z.string().min(1).default('known_hosts').describe('known_hosts file, relative to the inventory'),
        host_key_policy: z
          .enum(['strict', 'accept-new'])
          .default('strict')
          .describe('strict: unknown or changed host keys are refused; accept-new: unknown keys are recorded'),
        connect_timeout: seconds(10, 'seconds to wait for an SSH connection'),
        command_timeout: seconds(600, 'seconds any single command on a host may take'),
      })
      .prefault({})
      .describe('how pgha reaches the hosts'),
    hosts: z.record(z.string(), host).describe('the machines, by name (a DNS label: a-z, 0-9, -)'),
    roles: z
      .strictObject({
        etcd: hostList.describe('etcd members: an odd number, at least 3'),
        postgres: hostList.describe('PostgreSQL under Patroni'),
        haproxy: hostList.describe('HAProxy: the client entry points'),
        backup_repository: z
          .string()
          .optional()
          .describe('the pgBackRest repository host (required when pgbackrest.repository.type is host)'),
      })
      .describe('which host runs what'),
    timing: z
      .enum(['safe', 'balanced', 'fast'])
      .default('balanced')
      .describe("timing profile for Patroni's loop and HAProxy's health checks"),
    etcd: z
      .strictObject({
        client_port: port.default(2379),
        peer_port: port.default(2380),
        allow_single_member: z.boolean().default(false).describe('allow a single etcd member (no fault tolerance)'),
      })
      .prefault({}),
    patroni: z
      .strictObject({
        namespace: z
          .string()
          .regex(/^\/([A-Za-z0-9_-]+\/)*$/, 'expected a path like /service/')
          .default('/service/')
          .describe('key prefix in etcd'),
        restapi_port: port.default(8008),
        postgres_port: port.default(5432),
        ttl: z.int().min(7).max(3600).optional().describe('override of the timing profile: leader lock TTL, seconds'),
        loop_wait: z.int().min(1).max(3600).optional().describe("override of the timing profile: Patroni's loop, seconds"),
        retry_timeout: z.int().min(3).max(3600).optional().describe('override of the timing profile: DCS and PostgreSQL retry timeout, seconds'),
        maximum_lag_on_failover: z
          .int()
          .min(0)
          .default(1048576)
          .describe('bytes; a replica further behind is never promoted (also the replicas port lag limit)'),
        synchronous_mode: z.boolean().default(false).describe('synchronous replication to one standby (needs 2+ postgres hosts)'),
        failsafe_mode: z.boolean().default(true).describe('the primary keeps running while etcd has no quorum, if all members agree'),
        users: z
          .strictObject({
            superuser: roleName.default('postgres'),
            replication: roleName.default('replicator'),
            rewind: roleName.default('rewind_user'),
            restapi: roleName.default('patroni').describe("Patroni REST API's basic-auth user"),
          })
          .prefault({})
          .describe('role names; their passwords are in the secrets file'),
        parameters: z
          .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
          .default({})
          .describe("PostgreSQL parameters (pgha manages the replication and archiving ones)"),
        pg_hba: z.array(z.string().regex(/^[^\n\r]+$/, 'expected one pg_hba line')).default([]).describe("extra pg_hba rules, after pgha's own"),
      })
      .prefault({}),
    haproxy: z
      .strictObject({
        primary_port: port.default(5000).describe('read-write: always the current leader'),
        replicas_port: port.default(5001).describe('read-only: streaming replicas'),
        stats_port: port.default(7000).describe('HTTP statistics page (CSV at /;csv)'),
        maxconn: z
          .int()
          .min(1)
          .max(8000)
          .default(1000)
          .describe('connection limit; each connection costs HAProxy 2 file descriptors'),
      })
      .prefault({}),
    pgbackrest: z
      .strictObject({
        stanza: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'expected letters, digits, - and _')
          .default('main'),
        repository: z
          .strictObject({
            type: z
              .enum(['host', 'shared'])
              .default('host')
              .describe('host: the backup_repository host, over SSH; shared: a path mounted on every database host'),
            path: z.string().regex(/^\/\S*$/, 'expected an absolute path').default('/var/lib/pgbackrest'),
          })
          .prefault({}),
        retention_full: z.int().min(1).max(9999).default(2).describe('full backups kept'),
        schedule: z
          .strictObject({
            full: calendar.default('Sun *-*-* 01:00:00').describe('systemd OnCalendar of the full backup'),
            diff: calendar.default('Mon..Sat *-*-* 01:00:00').describe('systemd OnCalendar of the differential backup'),
          })
          .prefault({}),
      })
      .prefault({}),
    packages: z
      .strictObject({
        apt_proxy: aptProxy
          .nullable()
          .default(null)
          .describe('HTTP proxy for apt on every host, e.g. http://10.0.10.1:3142'),
        postgresql_apt_repository: z
          .boolean()
          .default(false)
          .describe("true: install from the PostgreSQL project's apt repository"),
      })
      .prefault({}),
  })
  .describe('pgha inventory');

export type InventoryConfig = z.output<typeof InventorySchema>;
export type HostConfig = InventoryConfig['hosts'][string];

/** Parameters pgha sets itself; an inventory may not override them. */
export const MANAGED_PARAMETERS = [
  'archive_command',
  'archive_mode',
  'hot_standby',
  'listen_addresses',
  'port',
  'restore_command',
  'wal_level',
  'wal_log_hints',
] as const;

export const SecretsSchema = z.strictObject({
  superuser_password: z.string().min(8),
  replication_password: z.string().min(8),
  rewind_password: z.string().min(8),
  restapi_password: z.string().min(8),
});
export type Secrets = z.output<typeof SecretsSchema>;

export function inventoryJsonSchema(): object {
  return z.toJSONSchema(InventorySchema, { io: 'input' });
}
