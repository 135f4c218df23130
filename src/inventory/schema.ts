// The inventory's shape and every default, in one place. The JSON Schema (`pgha schema`,
// schema/inventory.schema.json) and the README's reference are derived from this file.
import { isIP, isIPv4 } from 'node:net';
import * as z from 'zod';
import { controlCharacter } from '../terminal.js';
import { calendarProblem } from './calendar.js';
import { parseJump } from '../ssh/jump.js';

/**
 * net.isIP, without its IPv6 pattern for a string that cannot be IPv6 (no ':'): that pattern is
 * large, and V8 compiling it costs a command tens of milliseconds on a busy host.
 */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (s.includes(':')) return isIP(s) === 6 ? 6 : 0;
  return isIPv4(s) ? 4 : 0;
}

// Every command parses one inventory once: zod's compiled validators (generated code) cost more to
// build than that one parse takes without them (a few ms of every command's start).
z.config({ jitless: true });

// Host names become Patroni member names and etcd member names: keep them DNS-label-like.
export const HOST_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * What is wrong with a host's address, or null. The other hosts connect to it and it goes into
 * URLs and host:port pairs, so it must be a unicast address of that host itself, or a DNS name.
 */
export function addressProblem(s: string): string | null {
  const why = (what: string) => `${what}, expected the address the other hosts reach this host at (an IPv4 or IPv6 address or a host name)`;
  if (s.includes('%')) return why('an IPv6 zone id (%...) is only meaningful on one host and HAProxy cannot parse it');
  if (!isAddressSyntax(s)) return 'not a valid address, expected an IPv4 or IPv6 address or a host name';
  const v = ipVersion(s);
  if (v === 0) {
    const name = s.toLowerCase().replace(/\.$/, '');
    if (name === 'localhost' || name.endsWith('.localhost')) return why('localhost is every host itself');
    return null;
  }
  const bytes = ipBytes(s);
  if (bytes.every((b) => b === 0)) return why('the unspecified address (any address) is no address to connect to');
  // IPv4, or IPv4 mapped into IPv6 (::ffff:a.b.c.d).
  const v4 = v === 4 ? bytes : bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff ? bytes.slice(12) : null;
  if (v4) {
    if (v4[0] === 127) return why('a loopback address (127.0.0.0/8) is every host itself');
    if (v4[0] === 0) return why('0.0.0.0/8 is "this network", not a host');
    if (v4[0] >= 224 && v4[0] <= 239) return why('a multicast address is not one host');
    if (v4.every((b) => b === 255)) return why('the broadcast address is not one host');
    return null;
  }
  if (bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) return why('the loopback address ::1 is every host itself');
  if (bytes[0] === 0xff) return why('a multicast address (ff00::/8) is not one host');
  if (bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80) return why('a link-local address (fe80::/10) is only reachable with a zone id, which HAProxy cannot parse');
  return null;
}

/** An IP address (no zone id) or a DNS name; a dotted all-numeric name (10.0.0.300) is a typo, not a name. */
export function isAddressSyntax(s: string): boolean {
  return (ipVersion(s) !== 0 && !s.includes('%')) || (DNS_NAME_RE.test(s) && !/^[0-9.]+$/.test(s));
}

/** An IP address as 4 or 16 bytes (the address must be valid: ipVersion() !== 0, no zone id). */
function ipBytes(s: string): number[] {
  if (ipVersion(s) === 4) return s.split('.').map(Number);
  let text = s;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1].split('.').map(Number);
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/**
 * What is wrong with a network in CIDR notation (as pg_hba takes it), or null: an IPv4 or IPv6
 * network address, a prefix length in range, and no bits set past the prefix.
 */
export function cidrProblem(s: string): string | null {
  const bad = 'expected a network in CIDR notation, e.g. 10.0.10.0/24 or 2001:db8::/64';
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(s);
  if (!m || ipVersion(m[1]) === 0 || m[1].includes('%')) return bad;
  const bytes = ipBytes(m[1]);
  const prefix = Number(m[2]);
  if (prefix > bytes.length * 8) return `prefix /${prefix} is longer than the address, ${bad}`;
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3] & (0x80 >> (bit & 7))) return `host bits set past /${prefix}, ${bad} (the network's first address)`;
  }
  return null;
}

/** Whether `addr` (an IP address) lies in the network `cidr` (valid, see cidrProblem). */
export function inCidr(addr: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  if (ipVersion(addr) !== ipVersion(net)) return false;
  const a = ipBytes(addr);
  const n = ipBytes(net);
  for (let bit = 0; bit < Number(len); bit++) {
    if ((a[bit >> 3] ^ n[bit >> 3]) & (0x80 >> (bit & 7))) return false;
  }
  return true;
}

/** The same address in one spelling (IPv6 compressed and lowercase), to find duplicates. */
export function canonicalAddress(s: string): string {
  return ipVersion(s) === 6 ? new URL(`http://[${s}]/`).hostname.slice(1, -1) : s.toLowerCase();
}

export const CLUSTER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const POSTGRES_VERSIONS = { min: 13, max: 17 } as const;

const port = z.int().min(1).max(65535);
const seconds = (def: number, desc: string) => z.int().min(1).max(86400).default(def).describe(desc);
/** A zod check from a function returning what is wrong (or null). */
const problemCheck = (problem: (v: string) => string | null) => (v: string, ctx: z.RefinementCtx) => {
  const message = problem(v);
  if (message) ctx.addIssue({ code: 'custom', message });
};
const address = z.string().superRefine(problemCheck(addressProblem));

/**
 * A login name as Debian's tools create them (POSIX portable, lowercase): it is used on command
 * lines and in the sudoers line pgha suggests, so nothing else is accepted.
 */
export const SSH_USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const sshUser = z
  .string()
  .regex(SSH_USER_RE, 'expected a user name: a-z, 0-9, _ and -, starting with a letter or _, at most 32 characters');

/**
 * The apt proxy, written between quotes into an apt.conf file. Only a plain URL is accepted:
 * http(s)://HOST[:PORT][/PATH], an optional USER[:PASSWORD]@ of URL-safe characters (%XX for
 * others), HOST a DNS name, an IPv4 address or a bracketed IPv6 address.
 */
const URL_SAFE = '(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})';
const APT_PROXY_RE = new RegExp(
  `^https?://(?:${URL_SAFE}+(?::${URL_SAFE}*)?@)?(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(?:/${URL_SAFE}*)*$`,
);
export function aptProxyProblem(v: string): string | null {
  const bad = 'expected a plain URL http(s)://HOST[:PORT][/PATH] (no quotes, spaces, ;, braces, backslashes or control characters)';
  const m = APT_PROXY_RE.exec(v);
  if (!m) return bad;
  const [, host, portText] = m;
  const hostOk = host.startsWith('[') ? ipVersion(host.slice(1, -1)) === 6 : ipVersion(host) === 4 || (DNS_NAME_RE.test(host) && !/^[0-9.]+$/.test(host));
  if (!hostOk) return `not a valid host in the URL, ${bad}`;
  if (portText !== undefined && (Number(portText) < 1 || Number(portText) > 65535)) return `port ${portText} is not 1-65535, ${bad}`;
  return null;
}

/**
 * A PostgreSQL parameter name as postgresql.conf spells it (guc-file.l: an identifier, or two
 * joined by a dot for an extension's parameter like pg_stat_statements.max). Patroni writes it
 * there unquoted, so nothing else may get through.
 */
export const PARAMETER_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const parameterName = z
  .string()
  .regex(PARAMETER_NAME_RE, "not a PostgreSQL parameter name, expected letters, digits and _ (and one . for an extension's parameter, e.g. pg_stat_statements.max)");
// Patroni writes a value between quotes on one postgresql.conf line: a line break there is a
// syntax error that stops PostgreSQL from starting.
const parameterValue = z.union([
  z.string().superRefine(problemCheck((v) => {
    const c = controlCharacter(v);
    return c ? `contains ${c}, expected a one-line value (postgresql.conf holds one setting per line)` : null;
  })),
  z.number(),
  z.boolean(),
]);

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

/** pgBackRest's repository path: written as a pgbackrest.conf value and used on command lines. */
export const REPOSITORY_PATH_RE = /^\/[^\s\x00-\x1f\x7f-\x9f]*$/;

/**
 * Debian package names and versions (Debian policy 5.6.1 and 5.6.12), for packages.versions: they
 * go into apt's preferences file and onto apt-get's command line as NAME=VERSION.
 */
export const DEBIAN_PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+$/;
export const DEBIAN_VERSION_RE = /^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$/;
const debianPackage = z.string().regex(DEBIAN_PACKAGE_RE, 'not a Debian package name, expected lowercase letters, digits, +, - and . (at least 2, starting with a letter or digit)');
const debianVersion = z
  .string()
  .regex(DEBIAN_VERSION_RE, 'not a Debian version, expected [EPOCH:]UPSTREAM[-REVISION] as `apt-cache madison NAME` prints it, e.g. 15.18-0+deb12u1');

const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a role name: a-z, 0-9 and _');
// systemd OnCalendar expression, written into a timer unit.
// (The pattern is only a hint for editors, from the JSON Schema: calendarProblem is the check.)
const calendar = z
  .string()
  .superRefine(problemCheck(calendarProblem))
  .meta({ pattern: '^[A-Za-z0-9@*:.,/~_+-]+( +[A-Za-z0-9@*:.,/~_+-]+)*$' });

/** Jump hosts as ssh's ProxyJump writes them (checked by the same parser that connects). */
const jump = z
  .string()
  .superRefine(problemCheck((v) => {
    const r = parseJump(v);
    return typeof r === 'object' && !Array.isArray(r) ? r.problem : null;
  }))
  .meta({ pattern: '^\\S+$' });

/** Defaults of the SSH settings the inventory may leave to ~/.ssh/config (see src/session/session.ts). */
export const SSH_DEFAULTS = { user: 'root', port: 22, configFile: '~/.ssh/config' } as const;

const hostSsh = z
  .strictObject({
    user: sshUser.optional().describe('SSH user for this host (default: ssh.user)'),
    port: port.optional().describe('SSH port for this host (default: ssh.port)'),
    private_key: z.string().min(1).optional().describe('private key for this host (default: ssh.private_key)'),
    jump: jump.optional().describe('jump hosts for this host, [user@]host[:port][,...], or none (default: ssh.jump)'),
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

/** A name or address clients use to reach HAProxy (a virtual IP, a DNS name): a SAN of the database hosts' certificates. */
const clientName = z.string().superRefine(problemCheck((v) => (isAddressSyntax(v) ? null : 'not a host name or IP address, expected a DNS name (e.g. db.example.com) or an IPv4/IPv6 address')));

const tlsSettings = z
  .strictObject({
    enabled: z.boolean().default(true).describe('TLS and client-certificate authentication on every link (false: clear text, warned about)'),
    cert_days: z.int().min(7).max(3650).default(365).describe('validity of the host certificates pgha issues, in days'),
    renew_before_days: z
      .int()
      .min(1)
      .max(3650)
      .default(30)
      .describe('apply re-issues a host certificate that expires within this many days'),
    ca_days: z.int().min(365).max(36500).default(3650).describe("validity of the cluster CA pgha makes, in days"),
    client_names: z
      .array(clientName)
      .default([])
      .describe("extra names or addresses clients connect to (a virtual IP, a DNS name for the HAProxy hosts): added to the database hosts' certificates"),
  })
  .describe('TLS settings');
export type TlsSettings = z.output<typeof tlsSettings>;

/** Role attributes a user may list, as CREATE ROLE spells them; the rest keep PostgreSQL's defaults. */
export const ROLE_OPTIONS = [
  'SUPERUSER', 'NOSUPERUSER', 'CREATEDB', 'NOCREATEDB', 'CREATEROLE', 'NOCREATEROLE', 'INHERIT', 'NOINHERIT',
  'LOGIN', 'NOLOGIN', 'REPLICATION', 'NOREPLICATION', 'BYPASSRLS', 'NOBYPASSRLS',
] as const;
// Identifiers pgha writes double-quoted into SQL and unquoted into pg_hba: plain lowercase names only.
export const SQL_NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const sqlName = (what: string) => z.string().regex(SQL_NAME_RE, `expected a ${what} name: a-z, 0-9 and _, starting with a letter or _, at most 63`);
/** What is wrong with a pg_hba client address (an address or a CIDR), or null. */
export function hbaAddressProblem(v: string): string | null {
  const [addr, bits, ...rest] = v.split('/');
  const expected = 'expected an IPv4/IPv6 address or a CIDR (10.0.0.0/24), or haproxy (the HAProxy hosts)';
  const v4or6 = ipVersion(addr);
  if (rest.length || v4or6 === 0) return `not an address, ${expected}`;
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (v4or6 === 4 ? 32 : 128))) return `bad prefix length, ${expected}`;
  return null;
}
const hbaFrom = z.string().superRefine(problemCheck((v) => (v === 'haproxy' ? null : hbaAddressProblem(v))));
const state = z.enum(['present', 'absent']).default('present').describe('absent: dropped (pgha never drops anything not marked absent)');

const appUser = z.strictObject({
  name: sqlName('role'),
  state,
  options: z
    .array(z.enum(ROLE_OPTIONS))
    .default(['LOGIN'])
    .describe("role attributes (CREATE ROLE's keywords); those not listed keep PostgreSQL's defaults (NOLOGIN without LOGIN)"),
  connection_limit: z.int().min(-1).max(100000).default(-1).describe('-1: no limit'),
  pg_hba: z
    .strictObject({
      databases: z.array(z.union([z.literal('all'), sqlName('database')])).min(1).default(['all']).describe('databases this user may connect to'),
      from: z.array(hbaFrom).min(1).default(['haproxy']).describe('client addresses or CIDRs; haproxy: the HAProxy hosts (clients come through them)'),
    })
    .prefault({})
    .describe('the pg_hba rules of a LOGIN user (scram-sha-256)'),
});

/** What is wrong with a webhook URL, or null: http(s), a host, no credentials in it (use headers from the secrets file). */
export function webhookUrlProblem(v: string): string | null {
  const expected = 'expected an http:// or https:// URL';
  if (controlCharacter(v) || /\s/.test(v)) return `contains a space or control character, ${expected}`;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `not a URL, ${expected}`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `scheme ${u.protocol} is not http or https, ${expected}`;
  if (u.username || u.password) return `has credentials in it, ${expected} without user:password@ (put an Authorization header in the secrets file: webhook_headers.NAME)`;
  return null;
}
// An HTTP header name (RFC 9110 token) and a one-line value.
const HEADER_NAME_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
export const headerName = z.string().regex(HEADER_NAME_RE, 'expected an HTTP header name (letters, digits, -)');
export const headerValue = z.string().superRefine(problemCheck((v) => (controlCharacter(v) ? `contains ${controlCharacter(v)}, expected a one-line header value` : null)));
const webhook = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a name: a-z, 0-9, _ and -').describe('names it in output and in the secrets file (webhook_headers.NAME)'),
  url: z.string().superRefine(problemCheck(webhookUrlProblem)).describe('where the events are POSTed; only its scheme, host and port are ever printed'),
  headers: z.record(headerName, headerValue).default({}).describe('extra headers (not secret; secret ones go in the secrets file under webhook_headers.NAME)'),
  timeout: z.int().min(1).max(60).default(5).describe('seconds one try may take'),
});

const appDatabase = z.strictObject({
  name: sqlName('database'),
  state,
  owner: sqlName('role').optional().describe('a user of users: (default: the superuser)'),
  extensions: z
    .array(z.string().regex(/^[a-z_][a-z0-9_-]{0,62}$/, 'expected an extension name: a-z, 0-9, _ and -'))
    .default([])
    .describe('extensions created in it (CREATE EXTENSION; never dropped)'),
});

export const InventorySchema = z
  .strictObject({
    cluster: z
      .strictObject({
        name: z
          .string()
          .regex(CLUSTER_NAME_RE, 'expected letters, digits, - and _ (at most 63)')
          .describe("the Patroni scope (the cluster's name in etcd)"),
        postgres_version: z
          .int()
          .min(POSTGRES_VERSIONS.min)
          .max(POSTGRES_VERSIONS.max)
          .optional()
          .describe("PostgreSQL major version (default: the hosts' Debian release's, 15 on Debian 12, 17 on Debian 13)"),
      })
      .describe('the cluster'),
    secrets: z
      .string()
      .min(1)
      .default('secrets.yml')
      .describe('the secrets file (passwords), relative to the inventory; must be mode 0600'),
    ssh: z
      .strictObject({
        user: sshUser.optional().describe("SSH user: root, or a user with passwordless sudo (default: ~/.ssh/config's User, else root)"),
        port: port.optional().describe("SSH port (default: ~/.ssh/config's Port, else 22)"),
        private_key: z
          .string()
          .min(1)
          .optional()
          .describe("private key file, relative to the inventory; ~ is $HOME (default: ~/.ssh/config's IdentityFile, else the ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)"),
        jump: jump.optional().describe("jump hosts (ssh's ProxyJump): [user@]host[:port], several comma-separated, or none (default: ~/.ssh/config's ProxyJump)"),
        config_file: z
          .string()
          .min(1)
          .nullable()
          .default(SSH_DEFAULTS.configFile)
          .describe('the OpenSSH client config read for the values not set here (HostName, User, Port, IdentityFile, ProxyJump); null: none'),
        sudo: z.boolean().default(true).describe('run privileged steps through `sudo -n` (ignored for root)'),
        known_hosts: z.string().min(1).default('known_hosts').describe('known_hosts file, relative to the inventory'),
        host_key_policy: z
          .enum(['strict', 'accept-new'])
          .default('strict')
          .describe('strict: unknown or changed host keys are refused; accept-new: unknown keys are recorded'),
        connect_timeout: seconds(10, 'seconds to wait for an SSH connection'),
        command_timeout: seconds(600, 'seconds any single command on a host may take'),
        persist: z
          .int()
          .min(0)
          .max(3600)
          .default(60)
          .describe("seconds `pgha status` keeps its SSH connections open for the next call (ssh's ControlPersist); 0: none"),
      })
      .prefault({})
      .describe('how pgha reaches the hosts'),
    hosts: z
      .record(
        z.string().regex(HOST_NAME_RE, 'invalid host name, expected a DNS label: a-z, 0-9 and - (not at either end), at most 63 characters'),
        host,
      )
      .describe('the machines, by name (a DNS label: a-z, 0-9, -)'),
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
          .record(parameterName, parameterValue)
          .default({})
          .describe('PostgreSQL parameters (pgha manages the replication and archiving ones); names are case-insensitive'),
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
            path: z.string().regex(REPOSITORY_PATH_RE, 'expected an absolute path (no spaces or control characters)').default('/var/lib/pgbackrest'),
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
    tls: z
      .union([z.boolean(), tlsSettings])
      .default(true)
      .transform((v): TlsSettings => (typeof v === 'boolean' ? tlsSettings.parse({ enabled: v }) : v))
      .describe('TLS on every link (default): true, false, or a map of settings'),
    notifications: z
      .strictObject({
        webhooks: z.array(webhook).default([]).describe('each member POSTs a JSON event to every webhook on each of its role changes'),
        retries: z.int().min(0).max(10).default(4).describe('tries after the first, 1, 2, 4, 8... s apart; delivery runs detached and never delays Patroni'),
      })
      .prefault({})
      .describe('failover notifications'),
    vip: z
      .strictObject({
        address: z
          .string()
          .superRefine(problemCheck((v) => (ipVersion(v) === 0 ? 'not an IP address, expected an unused IPv4 or IPv6 address on the database hosts\' network' : addressProblem(v))))
          .describe("the virtual IP: an unused address on the database hosts' network"),
        prefix: z.int().min(1).max(128).default(24).describe("its network's prefix length (netmask), e.g. 24"),
        interface: z
          .string()
          .regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'expected a network interface name (e.g. eth0)')
          .describe('the interface of each database host that takes the address'),
      })
      .nullable()
      .default(null)
      .describe('a virtual IP held by the host of the current leader (vip-manager); clients connect to it on PostgreSQL\'s port'),
    pgbouncer: z
      .strictObject({
        port: port.default(6432).describe("PgBouncer's port on each HAProxy host"),
        default_pool_size: z.int().min(1).max(10000).default(20).describe('server connections per user and database'),
        max_client_conn: z.int().min(1).max(8000).default(500).describe('client connections PgBouncer accepts (each costs a file descriptor)'),
      })
      .nullable()
      .default(null)
      .describe('PgBouncer on the HAProxy hosts: client -> PgBouncer (transaction pooling) -> the local HAProxy primary port -> the leader; auth_query as the role pgha_pgbouncer (password pgbouncer_password in the secrets file)'),
    monitoring: z
      .boolean()
      .default(false)
      .describe('metrics for Prometheus: node_exporter (9100), postgres_exporter (9187), HAProxy exporter (8405), with Patroni and etcd /metrics; pgha prometheus writes the scrape config and alert rules'),
    users: z
      .array(appUser)
      .default([])
      .describe('database users (roles) pgha creates and alters on the leader; passwords in the secrets file under users.NAME'),
    databases: z
      .array(appDatabase)
      .default([])
      .describe('databases pgha creates on the leader (never dropped unless state: absent)'),
    packages: z
      .strictObject({
        apt_proxy: z
          .string()
          .superRefine(problemCheck(aptProxyProblem))
          .meta({ format: 'uri', pattern: APT_PROXY_RE.source })
          .nullable()
          .default(null)
          .describe('HTTP proxy for apt on every host, e.g. http://10.0.10.1:3142'),
        postgresql_apt_repository: z
          .boolean()
          .default(false)
          .describe("true: install from the PostgreSQL project's apt repository"),
        versions: z
          .record(debianPackage, debianVersion)
          .default({})
          .describe('exact versions to install and hold, by Debian package name (e.g. postgresql-15: 15.18-0+deb12u1); pgha upgrade moves to newer ones'),
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

/** Parameters pgha sets itself when tls is on (each member's certificate). */
export const TLS_PARAMETERS = ['ssl', 'ssl_cert_file', 'ssl_key_file'] as const;

// Passwords go into YAML, .pgpass, curl and pgBackRest files: one line of printable characters.
// The message names the character, never the value.
const password = z
  .string()
  .min(8)
  .superRefine(problemCheck((v) => {
    const c = controlCharacter(v);
    return c ? `contains ${c}, expected printable characters only (a password is one line)` : null;
  }));

export const SecretsSchema = z.strictObject({
  superuser_password: password,
  replication_password: password,
  rewind_password: password,
  restapi_password: password,
  users: z.record(z.string().regex(SQL_NAME_RE, 'expected a user name of the inventory'), password).optional(),
  pgbouncer_password: password.optional(),
  webhook_headers: z.record(z.string(), z.record(headerName, headerValue)).optional(),
});
export type Secrets = z.output<typeof SecretsSchema>;

/** Every password in the secrets (for maskers): the four of pgha's roles and the users'. */
export function secretValues(s: Secrets | undefined): string[] {
  if (!s) return [];
  const { users, webhook_headers, ...own } = s; // own: the role passwords, pgbouncer_password too
  return [...Object.values(own), ...Object.values(users ?? {}), ...Object.values(webhook_headers ?? {}).flatMap((h) => Object.values(h))];
}

export function inventoryJsonSchema(): object {
  return z.toJSONSchema(InventorySchema, { io: 'input' });
}
