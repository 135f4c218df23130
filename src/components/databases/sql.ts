// The pure half of users and databases: what a role should look like, how it differs from what
// PostgreSQL has, the SQL that closes the gap, the users' pg_hba rules, and SCRAM-SHA-256
// verifiers. A password is never sent to a host: pgha computes its SCRAM verifier (RFC 5802/7677,
// as PostgreSQL stores it) and compares or sets that, so the password itself never leaves pgha.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ipVersion } from '../../inventory/schema.js';
import type { Inventory } from '../../inventory/index.js';

export type AppUser = Inventory['users'][number];
export type AppDatabase = Inventory['databases'][number];

/** A role's attributes as pg_authid holds them. */
export interface RoleAttrs {
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
  inherit: boolean;
  login: boolean;
  replication: boolean;
  bypassrls: boolean;
  connection_limit: number;
}

/** A role as read from the leader (verifier: pg_authid.rolpassword, never printed). */
export interface RoleState extends RoleAttrs {
  verifier: string | null;
}

const FLAGS = ['superuser', 'createdb', 'createrole', 'inherit', 'login', 'replication', 'bypassrls'] as const;
const KEYWORD: Record<(typeof FLAGS)[number], string> = {
  superuser: 'SUPERUSER',
  createdb: 'CREATEDB',
  createrole: 'CREATEROLE',
  inherit: 'INHERIT',
  login: 'LOGIN',
  replication: 'REPLICATION',
  bypassrls: 'BYPASSRLS',
};

/** What the inventory asks for: CREATE ROLE's defaults, then the listed options. */
export function wantedAttrs(u: AppUser): RoleAttrs {
  const a: RoleAttrs = { superuser: false, createdb: false, createrole: false, inherit: true, login: false, replication: false, bypassrls: false, connection_limit: u.connection_limit };
  for (const f of FLAGS) {
    if (u.options.includes(KEYWORD[f] as never)) a[f] = true;
    if (u.options.includes(`NO${KEYWORD[f]}` as never)) a[f] = false;
  }
  return a;
}

/** Every attribute that differs, as "NOLOGIN -> LOGIN" / "CONNECTION LIMIT -1 -> 5". */
export function attrChanges(have: RoleAttrs, want: RoleAttrs): string[] {
  const word = (f: (typeof FLAGS)[number], on: boolean) => `${on ? '' : 'NO'}${KEYWORD[f]}`;
  const out = FLAGS.filter((f) => have[f] !== want[f]).map((f) => `${word(f, have[f])} -> ${word(f, want[f])}`);
  if (have.connection_limit !== want.connection_limit) out.push(`CONNECTION LIMIT ${have.connection_limit} -> ${want.connection_limit}`);
  return out;
}

/** The attribute clause of CREATE/ALTER ROLE: every attribute, spelled out. */
export function attrClause(a: RoleAttrs): string {
  return [...FLAGS.map((f) => `${a[f] ? '' : 'NO'}${KEYWORD[f]}`), `CONNECTION LIMIT ${a.connection_limit}`].join(' ');
}

/** An identifier for SQL (names are validated as [a-z_][a-z0-9_]*, quoting keeps keywords safe). */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;
/** A string literal for SQL (standard_conforming_strings: only ' needs doubling). */
export const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

// ---------------------------------------------------------------- SCRAM-SHA-256

const SCRAM_RE = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/**
 * PostgreSQL prepares a password with SASLprep before hashing. For ASCII that is the password
 * itself; for other text NFKC is the part that matters in practice (PostgreSQL falls back to the
 * raw bytes when SASLprep refuses a string; such a password may then read as changed each run).
 */
function saslPrep(password: string): string {
  return /^[\x00-\x7f]*$/.test(password) ? password : password.normalize('NFKC');
}

function keys(password: string, salt: Buffer, iterations: number): { stored: Buffer; server: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return { stored: createHash('sha256').update(clientKey).digest(), server: createHmac('sha256', salted).update('Server Key').digest() };
}

/** The verifier PostgreSQL stores for `password` (what `PASSWORD '...'` accepts pre-hashed). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const k = keys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${k.stored.toString('base64')}:${k.server.toString('base64')}`;
}

/** Whether a stored verifier is `password`'s (false for md5 or plain ones: they are replaced). */
export function scramMatches(verifier: string | null, password: string): boolean {
  const m = verifier ? SCRAM_RE.exec(verifier) : null;
  if (!m) return false;
  const k = keys(password, Buffer.from(m[2], 'base64'), Number(m[1]));
  const stored = Buffer.from(m[3], 'base64');
  const server = Buffer.from(m[4], 'base64');
  return stored.length === k.stored.length && server.length === k.server.length && timingSafeEqual(stored, k.stored) && timingSafeEqual(server, k.server);
}

// ---------------------------------------------------------------- the plan for one role and one database

/** What to change on a role (empty: nothing) and the SQL that does it; the SQL holds a verifier, never a password. */
export function rolePlan(u: AppUser, have: RoleState | null, password: string | undefined): { changes: string[]; sql: string } {
  if (u.state === 'absent') return have ? { changes: ['drop'], sql: `DROP ROLE ${ident(u.name)};` } : { changes: [], sql: '' };
  const want = wantedAttrs(u);
  const pw = password !== undefined && !(have && scramMatches(have.verifier, password));
  const withPw = pw ? ` PASSWORD ${literal(scramVerifier(password!))}` : '';
  if (!have) return { changes: [`create (${attrClause(want)}${password !== undefined ? ', password set' : ''})`], sql: `CREATE ROLE ${ident(u.name)} WITH ${attrClause(want)}${withPw};` };
  const changes = attrChanges(have, want);
  if (pw) changes.push('password changed (not shown)');
  return changes.length ? { changes, sql: `ALTER ROLE ${ident(u.name)} WITH ${attrClause(want)}${withPw};` } : { changes: [], sql: '' };
}

/** A database as read from the leader. */
export interface DatabaseState {
  owner: string;
  extensions: string[];
}

/** What to change on a database; `sql` runs in postgres, `inDb` in the database itself. */
export function databasePlan(d: AppDatabase, have: DatabaseState | null, superuser: string): { changes: string[]; sql: string[]; inDb: string[] } {
  if (d.state === 'absent') return have ? { changes: ['drop'], sql: [`DROP DATABASE ${ident(d.name)};`], inDb: [] } : { changes: [], sql: [], inDb: [] };
  const owner = d.owner ?? superuser;
  const changes: string[] = [];
  const sql: string[] = [];
  if (!have) {
    changes.push(`create (owner ${owner})`);
    sql.push(`CREATE DATABASE ${ident(d.name)} OWNER ${ident(owner)};`);
  } else if (have.owner !== owner) {
    changes.push(`owner ${have.owner} -> ${owner}`);
    sql.push(`ALTER DATABASE ${ident(d.name)} OWNER TO ${ident(owner)};`);
  }
  const missing = d.extensions.filter((e) => !(have?.extensions ?? []).includes(e));
  if (missing.length) changes.push(`extension${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return { changes, sql, inDb: missing.map((e) => `CREATE EXTENSION IF NOT EXISTS ${ident(e)};`) };
}

// ---------------------------------------------------------------- pg_hba

function cidr(addr: string): string {
  if (addr.includes('/')) return addr;
  const v = ipVersion(addr);
  return v === 4 ? `${addr}/32` : v === 6 ? `${addr}/128` : addr;
}

/** The pg_hba lines of the inventory's LOGIN users (scram-sha-256), in inventory order. */
export function userHbaRules(inv: Pick<Inventory, 'users' | 'hostsWithRole'>): string[] {
  const out: string[] = [];
  for (const u of inv.users) {
    if (u.state !== 'present' || !wantedAttrs(u).login) continue;
    const from = [...new Set(u.pg_hba.from.flatMap((f) => (f === 'haproxy' ? inv.hostsWithRole('haproxy').map((h) => cidr(h.address)) : [cidr(f)])))];
    for (const db of u.pg_hba.databases) for (const a of from) out.push(`host ${db} ${u.name} ${a} scram-sha-256`);
  }
  return out;
}
