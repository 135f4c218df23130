// PgBouncer (`pgbouncer:`) on the HAProxy hosts. The chain: client -> PgBouncer (transaction
// pooling, its own port) -> the same host's HAProxy primary port -> the leader. HAProxy stays the
// one place that knows where the leader is, so PgBouncer needs no reconfiguration on a leader
// change (on the database hosts behind HAProxy, a pool per member would be needed, and a demoted
// member's pooler would keep accepting). Clients authenticate with their own PostgreSQL password
// (scram-sha-256): PgBouncer looks up the verifier with auth_query as the dedicated role
// pgha_pgbouncer, through a SECURITY DEFINER function (schema pgha_pgbouncer, in postgres and in
// every database of `databases:`) that returns only non-superuser LOGIN roles.
import { restartService, service, type Operation } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import type { Inventory } from '../../inventory/index.js';
import { fileOp } from '../../render/op.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { sqlLocal } from '../../session/remote.js';
import { currentLeader } from '../patroni/cluster.js';
import { ident, literal, scramMatches, scramVerifier } from '../databases/sql.js';
import { check, renderedFile, type Component, type RenderInput } from '../types.js';
import { CA_BUNDLE, tlsOn } from '../tls/paths.js';

export const PGBOUNCER_ROLE = 'pgha_pgbouncer';
const SCHEMA = 'pgha_pgbouncer';
const INI = '/etc/pgbouncer/pgbouncer.ini';
const USERLIST = '/etc/pgbouncer/userlist.txt';

/** pg_hba lines for the auth_query role: from the HAProxy hosts, where PgBouncer runs (its connections go through HAProxy). */
export function pgbouncerHba(inv: Pick<Inventory, 'pgbouncer' | 'hostsWithRole'>): string[] {
  if (!inv.pgbouncer) return [];
  return inv.hostsWithRole('haproxy').map((h) => `host all ${PGBOUNCER_ROLE} ${h.address.includes(':') ? `${h.address}/128` : `${h.address}/32`} scram-sha-256`);
}

function pgbouncerFiles({ inv, host }: RenderInput): RenderedFile[] {
  if (!inv.pgbouncer || !host.roles.has('haproxy')) return [];
  const b = inv.pgbouncer;
  const ctx = {
    host: host.name,
    haproxyPort: inv.haproxy.primary_port,
    listen: host.address,
    port: b.port,
    maxClientConn: b.max_client_conn,
    poolSize: b.default_pool_size,
    authFile: USERLIST,
    authUser: PGBOUNCER_ROLE,
    authSchema: SCHEMA,
    // With TLS PostgreSQL refuses clear text: PgBouncer's server connections (to 127.0.0.1, a name
    // every member's certificate carries) verify the member behind HAProxy against the cluster CA.
    serverTls: tlsOn(inv) ? { ca: CA_BUNDLE } : null,
  };
  // The auth_user logs in to the server itself: its password is in the clear here (postgres, 0600).
  const pw = inv.secrets?.pgbouncer_password ?? '';
  return [
    renderFile('pgbouncer', INI, 'pgbouncer.ini.hbs', ctx, { owner: 'postgres', group: 'postgres', mode: 0o640 }),
    { path: USERLIST, content: `"${PGBOUNCER_ROLE}" "${pw.replace(/"/g, '""')}"\n`, owner: 'postgres', group: 'postgres', mode: 0o600, component: 'pgbouncer', secret: true },
  ];
}

const FUNCTION_SQL = [
  `CREATE SCHEMA IF NOT EXISTS ${ident(SCHEMA)};`,
  `CREATE OR REPLACE FUNCTION ${ident(SCHEMA)}.get_auth(p_usename text) RETURNS TABLE (usename name, passwd text)
     LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
     AS $$ SELECT rolname, rolpassword FROM pg_authid WHERE rolname = p_usename AND rolcanlogin AND NOT rolsuper $$;`,
  `REVOKE ALL ON FUNCTION ${ident(SCHEMA)}.get_auth(text) FROM PUBLIC;`,
  `GRANT USAGE ON SCHEMA ${ident(SCHEMA)} TO ${ident(PGBOUNCER_ROLE)};`,
  `GRANT EXECUTE ON FUNCTION ${ident(SCHEMA)}.get_auth(text) TO ${ident(PGBOUNCER_ROLE)};`,
].join('\n');

/** The auth_query role (its password the secrets file's) and the lookup function in every database clients use. */
function authOps(inv: Inventory, running: boolean): Operation[] {
  const password = inv.secrets?.pgbouncer_password ?? '';
  const role: Operation = {
    describe: `role ${PGBOUNCER_ROLE} (auth_query)`,
    async check(conn) {
      if (!running) return { summary: 'create (LOGIN, password set)' };
      const v = (await sqlLocal(inv, conn, `select coalesce(rolpassword, '') from pg_authid where rolname = ${literal(PGBOUNCER_ROLE)} and rolcanlogin and not rolsuper`, { overStdin: true })).stdout.trim();
      return v && scramMatches(v, password) ? null : { summary: v ? 'password changed (not shown)' : 'create (LOGIN, password set)' };
    },
    async apply(conn) {
      const exists = (await sqlLocal(inv, conn, `select 1 from pg_roles where rolname = ${literal(PGBOUNCER_ROLE)}`)).stdout.trim() === '1';
      const attrs = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${literal(scramVerifier(password))}`;
      await sqlLocal(inv, conn, `SET log_statement = none; ${exists ? 'ALTER' : 'CREATE'} ROLE ${ident(PGBOUNCER_ROLE)} WITH ${attrs};`, { overStdin: true });
    },
  };
  const dbs = ['postgres', ...inv.databases.filter((d) => d.state === 'present').map((d) => d.name)];
  const fn = (db: string): Operation => ({
    describe: `auth_query function in database ${db}`,
    async check(conn) {
      if (!running) return { summary: 'create' };
      const has = (await sqlLocal(inv, conn, `select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = ${literal(SCHEMA)} and p.proname = 'get_auth' and p.prosecdef and has_function_privilege(${literal(PGBOUNCER_ROLE)}, p.oid, 'execute')`, { database: db })).stdout.trim();
      return has === '1' ? null : { summary: 'create' };
    },
    async apply(conn) {
      await sqlLocal(inv, conn, FUNCTION_SQL, { overStdin: true, database: db });
    },
  });
  return [role, ...dbs.map(fn)];
}

export const pgbouncer: Component = {
  name: 'pgbouncer',
  packages: (inv, h) => (inv.pgbouncer && h.roles.has('haproxy') ? ['pgbouncer'] : []),
  files: pgbouncerFiles,
  // After the databases (the function goes into each of them), before PgBouncer takes clients.
  async start(ctx) {
    const { session, rollout } = ctx;
    if (!session.inv.pgbouncer) return;
    const leader = await currentLeader(session);
    if (!leader && !rollout.check) throw new PghaError('pgbouncer: no running Patroni leader to create its auth_query role on');
    await rollout.stage('pgbouncer auth', [session.conn(leader?.name ?? session.inv.hostsWithRole('postgres')[0].name)], () => authOps(session.inv, leader !== undefined));
    await rollout.stage('pgbouncer', session.withRole('haproxy'), (conn) => {
      const restart = [restartService('pgbouncer', { resetFailed: true })];
      return [fileOp(renderedFile(ctx, conn.target.name, USERLIST), restart), fileOp(renderedFile(ctx, conn.target.name, INI), restart), service('pgbouncer', { resetFailed: true })];
    });
  },
  // A login through each PgBouncer as the auth_query role itself, to the postgres database: the whole chain works.
  verify: (session) =>
    session.inv.pgbouncer
      ? session.inv.hostsWithRole('haproxy').map((h) =>
          check('pgbouncer', h.name, async () => {
            const { inv } = session;
            const conninfo = `host=${h.address} port=${inv.pgbouncer!.port} user=${PGBOUNCER_ROLE} dbname=postgres connect_timeout=5`;
            const script = `PGPASSWORD=$(cat); export PGPASSWORD; exec psql -XAtq -v ON_ERROR_STOP=1 '${conninfo}' -c 'select pg_is_in_recovery()'`;
            const r = await session.conn(h.name).run(script, { sudo: false, stdin: inv.secrets?.pgbouncer_password ?? '', check: false, timeoutMs: 20_000 });
            if (r.code !== 0 || r.stdout.trim() !== 'f') throw new PghaError(`a login through port ${inv.pgbouncer!.port} failed: ${r.stderr.trim().split('\n').pop() || r.stdout.trim()}`);
            return `port ${inv.pgbouncer!.port}: login through HAProxy to the leader`;
          }),
        )
      : [],
};
