// pgBackRest. Default layout: a dedicated repository host that reaches the database hosts over
// SSH (user pgbackrest there, user postgres on the database hosts). Each side's key pair is made
// on its own host; only public keys and host keys travel (read over pgha's verified connections).
// prepare (before PostgreSQL first starts, so archiving works from its first WAL): users,
// directories, configuration, the archive_command wrapper, key pairs and SSH trust.
// leaderUp (the leader runs, the replicas not yet): the stanza, created once.
// start: `check` passes, a first full backup, timers for the schedule.
import { command, daemonReload, directory, file, service, systemGroup, systemUser, type Operation } from '../../engine/index.js';
import { PghaError } from '../../errors.js';
import type { Host, Inventory } from '../../inventory/index.js';
import { fileOp } from '../../render/op.js';
import type { Connection } from '../../ssh/index.js';
import { POSTGRES_HOME } from '../patroni/paths.js';
import { check, renderedFile, type ApplyContext, type Component, type TopologyFacts, type TopologyStep } from '../types.js';
import { isScheduleUnit, pgbackrestFiles } from './files.js';
import { ARCHIVE_PUSH, LOG_DIR, PGBACKREST_CONF, PGBACKREST_SSH_CONFIG, RECORD_BACKUPS, REPO_HOME, REPO_USER, SPOOL_DIR } from './paths.js';
import { describeLost, recordBackups } from './record.js';
import { lastLines, pgbackrest as runPgbackrest, pgbackrestRunner, stanzaInfo, stanzaCheck } from './runner.js';

/** The name under which apply's gate records a passed `pgbackrest check` (ApplyContext.passed). */
const STANZA_CHECKED = 'pgbackrest check';
/** How long such a pass stands in for verify's own check (a first full backup may lie between). */
const STANZA_CHECK_FRESH_MS = 10 * 60_000;

interface Side {
  user: string;
  home: string;
}
const repoSide: Side = { user: REPO_USER, home: REPO_HOME };
const dbSide: Side = { user: 'postgres', home: POSTGRES_HOME };

/** The repository host's own user (it owns the repository, its SSH key and its etcd client key). */
export function repoUserOps(): Operation[] {
  return [systemGroup(REPO_USER), systemUser(REPO_USER, { group: REPO_USER, home: REPO_HOME, shell: '/bin/bash' })];
}

function keyPairOps(side: Side, hostName: string): Operation[] {
  const ssh = `${side.home}/.ssh`;
  return [
    directory(ssh, { owner: side.user, group: side.user, mode: 0o700 }),
    command(
      `ssh key pair of ${side.user}`,
      ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${side.user}@${hostName}`, '-f', `${ssh}/id_ed25519`],
      { user: side.user, unless: ['test', '-s', `${ssh}/id_ed25519.pub`] },
    ),
  ];
}

async function prepare(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const repo = inv.repositoryHost;
  const dbConns = session.withRole('postgres');

  // 1. Users, directories, key pairs and configuration.
  const hosts = repo ? [...dbConns, session.conn(repo)] : dbConns;
  await rollout.stage('pgbackrest', hosts, (conn) => {
    const isRepo = repo !== undefined && conn.target.name === repo.name;
    const side = isRepo ? repoSide : dbSide;
    const owned = { owner: side.user, group: side.user, mode: 0o750 };
    const mine = (path: string) => fileOp(renderedFile(ctx, conn.target.name, path));
    return [
      ...(isRepo ? repoUserOps() : []),
      ...(isRepo ? [directory(REPO_HOME, owned)] : []),
      directory(LOG_DIR, owned),
      directory(SPOOL_DIR, owned),
      mine(PGBACKREST_CONF),
      ...(isRepo ? [mine(RECORD_BACKUPS)] : [mine(ARCHIVE_PUSH)]),
      ...(repo ? keyPairOps(side, conn.target.name) : []),
      ...(repo && !isRepo ? [mine(PGBACKREST_SSH_CONFIG)] : []),
    ];
  });
  if (repo) await trust(ctx, repo);
}

/** SSH trust between the repository host and the database hosts (host type only). */
async function trust(ctx: ApplyContext, repo: Host): Promise<void> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const dbConns = session.withRole('postgres');
  const repoConn = session.conn(repo);
  const read = async (conn: Connection, path: string) => (await conn.readFile(path))?.trim() ?? null;
  // Every key type the host has: with one missing, ssh (UpdateHostKeys) would add it on first
  // use and the next apply would see a changed file.
  const hostKeys = async (conn: Connection) => {
    const r = await conn.run('cat /etc/ssh/ssh_host_*_key.pub', { sudo: false, check: false });
    const keys = r.stdout.split('\n').filter((l) => l.trim()).map((l) => l.split(/\s+/).slice(0, 2).join(' ')).sort();
    return keys.length ? keys : null;
  };
  const repoPub = await read(repoConn, `${REPO_HOME}/.ssh/id_ed25519.pub`);
  const repoHostKey = await hostKeys(repoConn);
  const db = await Promise.all(dbConns.map(async (c) => ({ host: inv.host(c.target.name), pub: await read(c, `${POSTGRES_HOME}/.ssh/id_ed25519.pub`), hostKey: await hostKeys(c) })));
  if (!repoPub || db.some((d) => !d.pub)) {
    // Only in check mode: the key pairs are made in the stage before.
    ctx.notes.push('pgBackRest SSH trust: key pairs do not exist yet; authorized_keys and known_hosts will be written once they do');
    return;
  }
  const missing = [repoHostKey ? [] : [repo.name], ...db.map((d) => (d.hostKey ? [] : [d.host.name]))].flat();
  if (missing.length) throw new PghaError(`${missing.join(', ')}: no /etc/ssh/ssh_host_*_key.pub: pgBackRest over SSH needs the host's SSH host keys`);
  const restrict = 'no-agent-forwarding,no-X11-forwarding,no-port-forwarding';
  const knownLine = (h: Host, keys: string[]) => keys.map((k) => `${h.address} ${k}\n`).join('');
  await rollout.stage('pgbackrest ssh trust', [...dbConns, repoConn], (conn) => {
    const isRepo = conn.target.name === repo.name;
    const side = isRepo ? repoSide : dbSide;
    const authorized = isRepo ? db.map((d) => `${restrict} ${d.pub}\n`).join('') : `${restrict} ${repoPub}\n`;
    const known = isRepo ? db.map((d) => knownLine(d.host, d.hostKey!)).join('') : knownLine(repo, repoHostKey!);
    const attrs = { owner: side.user, group: side.user, mode: 0o600 };
    return [file(`${side.home}/.ssh/authorized_keys`, authorized, attrs), file(`${side.home}/.ssh/known_hosts`, known, attrs)];
  });
}

/**
 * The stanza, created once. It needs a running primary, and PostgreSQL archives as soon as a WAL
 * segment is complete, which a replica's base backup forces: so it is made once the leader runs
 * and before the replicas start, and archive-push never finds it missing.
 */
async function leaderUp(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const runner = await pgbackrestRunner(session);
  await rollout.stage('pgbackrest stanza', [runner.conn], () => [
    {
      describe: `stanza ${session.inv.pgbackrest.stanza}`,
      async check() {
        const info = await stanzaInfo(session, runner);
        return info.code === 0 || info.code === 2 ? null : { summary: `stanza-create (info: ${info.message})` };
      },
      async apply() {
        await runPgbackrest(session, runner, ['stanza-create'], { timeoutMs: 300_000 });
      },
    },
  ]);
}

/** The backup list copied into etcd; a failure is a note, not a failed apply. */
async function record(ctx: ApplyContext): Promise<void> {
  const done = await recordBackups(ctx.session);
  if (done !== true) ctx.notes.push(`the backup list could not be copied into etcd (${done}): should the repository's disk be lost, pgha could not name the backups lost with it`);
}

/**
 * `pgha replace` of the repository host: its repository starts empty. The stanza is created again
 * (leaderUp, as on a new cluster), then this step takes a full backup and says what was lost.
 */
function plan(facts: TopologyFacts, inv: Inventory): TopologyStep[] {
  const repo = inv.repositoryHost;
  if (!repo || facts.replace !== repo.name || !facts.repository || facts.repository.exists) return [];
  const lost = describeLost(inv, facts.repository.recorded);
  return [
    {
      phase: 'pgbackrest.start',
      text: `pgbackrest: the repository on ${repo.name} is created again (stanza ${inv.pgbackrest.stanza}, a new full backup); ${lost}`,
      run: async (ctx) => {
        const { session, rollout } = ctx;
        const runner = await pgbackrestRunner(session);
        await rollout.waitFor(`pgBackRest check of stanza ${inv.pgbackrest.stanza} (WAL archiving works)`, () => stanzaCheck(session, runner), { timeoutMs: 240_000, intervalMs: 3000 });
        ctx.passed.set(STANZA_CHECKED, Date.now());
        await rollout.stage('pgbackrest full backup (new repository)', [runner.conn], () => [
          {
            describe: 'a full backup in the new repository',
            async check() {
              return (await stanzaInfo(session, runner)).backups.some((b) => b.type === 'full' && !b.error) ? null : { summary: 'take a full backup' };
            },
            async apply() {
              const r = await runPgbackrest(session, runner, ['--type=full', 'backup'], { check: false, timeoutMs: 4 * 3600_000 });
              if (r.code !== 0) throw new PghaError(`the full backup failed (pgBackRest exit ${r.code}): ${lastLines(r, 3)}`);
              await record(ctx);
            },
          },
        ]);
        rollout.reporter.say(`pgbackrest: ${lost}`);
      },
    },
  ];
}

/** Once the cluster runs: `check` (WAL archiving works), a first full backup, the backup schedule. */
async function start(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const stanza = session.inv.pgbackrest.stanza;
  await ctx.topology.run('pgbackrest.start', ctx);
  if (!rollout.check) {
    const runner = await pgbackrestRunner(session);
    // Nothing changed since the last apply: verify runs the same check at the end, no need to pay for it twice.
    if (rollout.changedIn(['pgbackrest', 'pgbackrest ssh trust', 'pgbackrest stanza']) > 0) {
      await rollout.waitFor(`pgBackRest check of stanza ${stanza} (WAL archiving works)`, () => stanzaCheck(session, runner), { timeoutMs: 240_000, intervalMs: 3000 });
      ctx.passed.set(STANZA_CHECKED, Date.now());
    }
    await rollout.stage('pgbackrest first backup', [runner.conn], () => [
      {
        describe: 'a full backup exists',
        async check() {
          return (await stanzaInfo(session, runner)).backups.length > 0 ? null : { summary: 'take the first full backup' };
        },
        async apply() {
          const r = await runPgbackrest(session, runner, ['--type=full', 'backup'], { check: false, timeoutMs: 4 * 3600_000 });
          if (r.code !== 0) throw new PghaError(`the first full backup failed (pgBackRest exit ${r.code}): ${lastLines(r, 3)}`);
          await record(ctx);
        },
      },
    ]);
  }
  // systemd timers for the scheduled backups, where the rendered units say.
  const conns = [...session.conns.values()].filter((c) => ctx.files(c.target.name).some(isScheduleUnit));
  if (!conns.length) return;
  await rollout.stage('backup schedule', conns, (conn) => {
    const units = ctx.files(conn.target.name).filter(isScheduleUnit);
    return [
      calendarCheck(session.inv.pgbackrest.schedule),
      ...units.map((f) => fileOp(f, [daemonReload])),
      ...units.filter((f) => f.path.endsWith('.timer')).map((f) => service(f.path.split('/').pop()!)),
    ];
  });
}

/**
 * The schedule as the host's systemd reads it, before any timer is written: validate checks the
 * syntax, but only the host knows its time zones (and its systemd version). Read-only, so it runs
 * in check mode too; a refused expression fails the host with systemd's own message.
 */
export function calendarCheck(schedule: { full: string; diff: string }): Operation {
  return {
    describe: 'backup schedule (systemd-analyze calendar)',
    async check(conn) {
      for (const type of ['full', 'diff'] as const) {
        const r = await conn.run(['systemd-analyze', 'calendar', '--', schedule[type]], { sudo: false, check: false });
        const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-2).join(' ');
        if (r.code !== 0) throw new PghaError(`pgbackrest.schedule.${type} ${JSON.stringify(schedule[type])}: systemd refuses it: ${said}`);
        if (/Next elapse: never/.test(r.stdout)) {
          throw new PghaError(`pgbackrest.schedule.${type} ${JSON.stringify(schedule[type])}: systemd accepts it, but it never elapses again (a date in the past?)`);
        }
      }
      return null;
    },
    async apply() {},
  };
}

export const pgbackrest: Component = {
  name: 'pgbackrest',
  // curl on the repository host: the backup list goes to etcd's JSON gateway.
  packages: (inv, h) => [...(h.roles.has('postgres') ? ['pgbackrest'] : []), ...(h.roles.has('backup_repository') ? ['pgbackrest', 'openssh-client', 'curl'] : [])],
  upgrades: (_inv, h) => (h.roles.has('postgres') || h.roles.has('backup_repository') ? ['pgbackrest'] : []),
  files: pgbackrestFiles,
  plan,
  prepare,
  leaderUp,
  start,
  verify: (session, passed) => [
    check('pgbackrest', session.inv.repositoryHost?.name, async () => {
      const runner = await pgbackrestRunner(session);
      // `pgbackrest check` (a WAL segment switched and archived) takes seconds: an apply whose gate ran it just now reports that.
      const at = passed?.get(STANZA_CHECKED);
      const recent = at !== undefined && Date.now() - at <= STANZA_CHECK_FRESH_MS;
      if (!recent) {
        const ok = await stanzaCheck(session, runner);
        if (ok !== true) throw new PghaError(`check failed: ${ok}`);
      }
      const info = await stanzaInfo(session, runner);
      if (info.code !== 0) throw new PghaError(`info status ${info.code}: ${info.message}`);
      const checked = recent ? `; pgbackrest check passed ${Math.round((Date.now() - at) / 1000)} s ago in this apply` : '';
      return `stanza ${info.stanza} ok, ${info.backups.length} backup(s), WAL archived up to ${info.archiveMax ?? '?'}${checked}`;
    }),
  ],
};
