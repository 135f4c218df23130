// Users and databases from the inventory (`users:`, `databases:`), created and altered on the
// current leader once Patroni runs. Each user and each database is one op: its check reads the
// leader's catalog, so --check shows the plan and a second apply changes nothing. Nothing is
// dropped unless marked `state: absent`. Passwords never leave pgha: a LOGIN user's SCRAM
// verifier is computed here, compared with pg_authid, and sent (over stdin) only when it differs.
// The users' pg_hba rules are rendered into Patroni's config (patroni/files.ts, userHbaRules).
import type { Operation } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import { sqlLocal } from '../../session/remote.js';
import type { Session } from '../../session/session.js';
import type { Connection } from '../../ssh/index.js';
import { currentLeader } from '../patroni/cluster.js';
import { check, type Component } from '../types.js';
import { databasePlan, literal, rolePlan, type AppDatabase, type AppUser, type DatabaseState, type RoleState } from './sql.js';

const ROLE_SQL = (name: string) =>
  `select json_build_object('superuser', rolsuper, 'createdb', rolcreatedb, 'createrole', rolcreaterole, 'inherit', rolinherit, 'login', rolcanlogin,
   'replication', rolreplication, 'bypassrls', rolbypassrls, 'connection_limit', rolconnlimit, 'verifier', rolpassword) from pg_authid where rolname = ${literal(name)}`;

async function roleState(session: Session, conn: Connection, name: string): Promise<RoleState | null> {
  // Over stdin: the answer holds the verifier, and -v shows commands, never their output.
  const out = (await sqlLocal(session.inv, conn, ROLE_SQL(name), { overStdin: true })).stdout.trim();
  return out ? (JSON.parse(out) as RoleState) : null;
}

async function databaseState(session: Session, conn: Connection, name: string): Promise<DatabaseState | null> {
  const owner = (await sqlLocal(session.inv, conn, `select pg_get_userbyid(datdba) from pg_database where datname = ${literal(name)}`)).stdout.trim();
  if (!owner) return null;
  const ext = (await sqlLocal(session.inv, conn, 'select extname from pg_extension', { database: name })).stdout.split('\n').filter(Boolean);
  return { owner, extensions: ext };
}

// The statement holds a password verifier: keep it out of PostgreSQL's log as well.
const QUIET = 'SET log_statement = none; SET log_min_duration_statement = -1; SET log_min_error_statement = panic;\n';

/** `running`: false in check mode before a cluster exists (everything would be created). */
function userOp(session: Session, u: AppUser, running: boolean): Operation {
  const password = session.inv.secrets?.users?.[u.name];
  const plan = async (conn: Connection) => rolePlan(u, running ? await roleState(session, conn, u.name) : null, password);
  return {
    describe: `user ${u.name}${u.state === 'absent' ? ' (absent)' : ''}`,
    async check(conn) {
      const p = await plan(conn);
      return p.changes.length ? { summary: p.changes.join(', ') } : null;
    },
    async apply(conn) {
      const p = await plan(conn);
      if (p.sql) await sqlLocal(session.inv, conn, QUIET + p.sql, { overStdin: true, timeoutMs: 60_000 });
    },
  };
}

function databaseOp(session: Session, d: AppDatabase, running: boolean): Operation {
  const superuser = session.inv.patroni.users.superuser;
  const plan = async (conn: Connection) => databasePlan(d, running ? await databaseState(session, conn, d.name) : null, superuser);
  return {
    describe: `database ${d.name}${d.state === 'absent' ? ' (absent)' : ''}`,
    async check(conn) {
      const p = await plan(conn);
      return p.changes.length ? { summary: p.changes.join(', ') } : null;
    },
    async apply(conn) {
      const p = await plan(conn);
      // CREATE and DROP DATABASE cannot run inside a transaction: one statement at a time.
      for (const s of p.sql) await sqlLocal(session.inv, conn, s, { overStdin: true, timeoutMs: 120_000 });
      if (p.inDb.length) await sqlLocal(session.inv, conn, p.inDb.join('\n'), { overStdin: true, database: d.name, timeoutMs: 120_000 });
    },
  };
}

export const databases: Component = {
  name: 'databases',
  async start(ctx) {
    const { session, rollout } = ctx;
    const { users, databases: dbs } = session.inv;
    if (!users.length && !dbs.length) return;
    const leader = await currentLeader(session);
    if (!leader && !rollout.check) throw new PghaError('users and databases: no running Patroni leader to create them on');
    // In check mode before the cluster exists, the plan is shown from the first database host.
    const conn = session.conn(leader?.name ?? session.inv.hostsWithRole('postgres')[0].name);
    const running = leader !== undefined;
    const present = <T extends { state: string }>(xs: T[]) => xs.filter((x) => x.state === 'present');
    const absent = <T extends { state: string }>(xs: T[]) => xs.filter((x) => x.state === 'absent');
    // Owners before their databases; a database before the user that owned it is dropped.
    await rollout.stage('users and databases', [conn], () => [
      ...present(users).map((u) => userOp(session, u, running)),
      ...present(dbs).map((d) => databaseOp(session, d, running)),
      ...absent(dbs).map((d) => databaseOp(session, d, running)),
      ...absent(users).map((u) => userOp(session, u, running)),
    ]);
  },
  verify: (session) =>
    session.inv.users.length || session.inv.databases.length
      ? [
          check('databases', undefined, async () => {
            const leader = await currentLeader(session);
            if (!leader) throw new PghaError('no running leader');
            const conn = session.conn(leader.name);
            const wrong: string[] = [];
            for (const u of session.inv.users) {
              const p = rolePlan(u, await roleState(session, conn, u.name), session.inv.secrets?.users?.[u.name]);
              if (p.changes.length) wrong.push(`user ${u.name}: ${p.changes.join(', ')}`);
            }
            for (const d of session.inv.databases) {
              const p = databasePlan(d, await databaseState(session, conn, d.name), session.inv.patroni.users.superuser);
              if (p.changes.length) wrong.push(`database ${d.name}: ${p.changes.join(', ')}`);
            }
            if (wrong.length) throw new PghaError(`not as the inventory says (run pgha apply): ${wrong.join('; ')}`);
            return `${session.inv.users.length} user(s) and ${session.inv.databases.length} database(s) as the inventory says`;
          }),
        ]
      : [],
};
