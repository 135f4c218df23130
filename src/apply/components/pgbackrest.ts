// pgBackRest. Default layout: a dedicated repository host that reaches the database hosts over
// SSH (user pgbackrest there, user postgres on the database hosts). Each side's key pair is made
// on its own host; only public keys and host keys travel (read over pgha's verified connections).
// Then: stanza created once, `check` passes (WAL archiving works), a first full backup, and
// systemd timers for the scheduled backups.
import { command, directory, systemGroup, systemUser, type Operation } from '../../engine/index.js';
import type { Host } from '../../inventory/index.js';
import type { Connection } from '../../ssh/index.js';
import type { ApplyContext } from '../context.js';
import { renderedFile } from '../context.js';
import { daemonReload, renderedFileOp, serviceStarted } from '../ops.js';
import { file } from '../../engine/index.js';
import { pgbackrestRunner, stanzaInfo } from '../../cluster/pgbackrest.js';
import { PGBACKREST_SSH_CONFIG } from '../../render/index.js';

const CONF = '/etc/pgbackrest.conf';
const REPO_HOME = '/var/lib/pgbackrest';
const REPO_USER = 'pgbackrest';
const PG_HOME = '/var/lib/postgresql';

interface Side {
  user: string;
  home: string;
}
const repoSide: Side = { user: REPO_USER, home: REPO_HOME };
const dbSide: Side = { user: 'postgres', home: PG_HOME };

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

/**
 * Users, directories, configuration, key pairs and SSH trust: everything archive-push needs, so
 * it runs before PostgreSQL first starts (archive_command fires as soon as a WAL segment is
 * complete). Returns how many ops changed.
 */
export async function pgbackrestSetup(ctx: ApplyContext): Promise<number> {
  const { session, rollout } = ctx;
  const { inv } = session;
  const repo = inv.repositoryHost;
  const dbConns = session.withRole('postgres');

  // 1. Users, directories, key pairs and configuration.
  const hosts = repo ? [...dbConns, session.conn(repo)] : dbConns;
  let changed = 0;
  changed += (await rollout.stage('pgbackrest', hosts, (conn) => {
    const isRepo = repo !== undefined && conn.target.name === repo.name;
    const side = isRepo ? repoSide : dbSide;
    const owned = { owner: side.user, group: side.user, mode: 0o750 };
    return [
      ...(isRepo ? [systemGroup(side.user), systemUser(side.user, { group: side.user, home: side.home, shell: '/bin/bash' })] : []),
      ...(isRepo ? [directory(REPO_HOME, owned)] : []),
      directory('/var/log/pgbackrest', owned),
      directory('/var/spool/pgbackrest', owned),
      renderedFileOp(renderedFile(ctx, conn.target.name, CONF)),
      ...(repo ? keyPairOps(side, conn.target.name) : []),
      ...(repo && !isRepo ? [renderedFileOp(renderedFile(ctx, conn.target.name, PGBACKREST_SSH_CONFIG))] : []),
    ];
  })).changed;

  // 2. SSH trust between the repository host and the database hosts (host type only).
  if (repo) {
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
    const db = await Promise.all(
      dbConns.map(async (c) => ({ host: inv.host(c.target.name), pub: await read(c, `${PG_HOME}/.ssh/id_ed25519.pub`), hostKey: await hostKeys(c) })),
    );
    if (!repoPub || db.some((d) => !d.pub)) {
      // Only in check mode: the key pairs are made in step 1.
      ctx.notes.push('pgBackRest SSH trust: key pairs do not exist yet; authorized_keys and known_hosts will be written once they do');
    } else {
      if (!repoHostKey || db.some((d) => !d.hostKey)) throw new Error('a host has no /etc/ssh/ssh_host_*_key.pub: pgBackRest over SSH needs its host keys');
      const restrict = 'no-agent-forwarding,no-X11-forwarding,no-port-forwarding';
      const knownLine = (h: Host, keys: string[]) => keys.map((k) => `${h.address} ${k}\n`).join('');
      changed += (await rollout.stage('pgbackrest ssh trust', hosts, (conn) => {
        const isRepo = conn.target.name === repo.name;
        const side = isRepo ? repoSide : dbSide;
        const authorized = isRepo ? db.map((d) => `${restrict} ${d.pub}\n`).join('') : `${restrict} ${repoPub}\n`;
        const known = isRepo ? db.map((d) => knownLine(d.host, d.hostKey!)).join('') : knownLine(repo, repoHostKey!);
        const attrs = { owner: side.user, group: side.user, mode: 0o600 };
        return [file(`${side.home}/.ssh/authorized_keys`, authorized, attrs), file(`${side.home}/.ssh/known_hosts`, known, attrs)];
      })).changed;
    }
  }
  return changed;
}

/**
 * The stanza, created once. It needs a running primary, and PostgreSQL archives as soon as a
 * WAL segment is complete, which a replica's base backup forces: so this runs once the leader
 * is up and before the replicas start, and archive-push never finds the stanza missing.
 */
export async function stanzaStage(ctx: ApplyContext): Promise<number> {
  const { session, rollout } = ctx;
  const stanza = session.inv.pgbackrest.stanza;
  const { conn: runner, user } = await pgbackrestRunner(session);
  return (await rollout.stage('pgbackrest stanza', [runner], () => [
    {
      describe: `stanza ${stanza}`,
      async check() {
        const info = await stanzaInfo(session);
        return info.code === 0 || info.code === 2 ? null : { summary: `stanza-create (info: ${info.message})` };
      },
      async apply(conn) {
        await conn.run(['pgbackrest', `--stanza=${stanza}`, 'stanza-create'], { user, timeoutMs: 300_000 });
      },
    },
  ])).changed;
}

/**
 * After the cluster runs: `check` (WAL archiving works), a first full backup and the backup
 * schedule. `changed`: what pgbackrestSetup and stanzaStage changed.
 */
export async function pgbackrestComponent(ctx: ApplyContext, changed: number): Promise<void> {
  const { session, rollout } = ctx;
  if (rollout.check) return scheduleStage(ctx);
  const stanza = session.inv.pgbackrest.stanza;
  const { conn: runner, user } = await pgbackrestRunner(session);
  // Nothing changed: verify runs the same check at the end, no need to pay for it twice.
  if (changed > 0) await rollout.waitFor(`pgBackRest check of stanza ${stanza} (WAL archiving works)`, async () => {
    const r = await runner.run(['pgbackrest', `--stanza=${stanza}`, 'check'], { user, check: false, timeoutMs: 120_000 });
    return r.code === 0 ? true : (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-2).join(' ');
  }, { timeoutMs: 240_000, intervalMs: 3000 });
  await rollout.stage('pgbackrest first backup', [runner], () => [
    {
      describe: 'a full backup exists',
      async check() {
        const info = await stanzaInfo(session);
        return info.backups.length > 0 ? null : { summary: 'take the first full backup' };
      },
      async apply(conn) {
        await conn.run(['pgbackrest', `--stanza=${stanza}`, '--type=full', 'backup'], { user, timeoutMs: 4 * 3600_000 });
      },
    },
  ]);
  await scheduleStage(ctx);
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
        if (r.code !== 0) throw new Error(`pgbackrest.schedule.${type} ${JSON.stringify(schedule[type])}: systemd refuses it: ${said}`);
        if (/Next elapse: never/.test(r.stdout)) {
          throw new Error(`pgbackrest.schedule.${type} ${JSON.stringify(schedule[type])}: systemd accepts it, but it never elapses again (a date in the past?)`);
        }
      }
      return null;
    },
    async apply() {},
  };
}

/** systemd timers for the scheduled backups, where the rendered units say. */
async function scheduleStage(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const conns = [...session.conns.values()].filter((c) => ctx.files(c.target.name).some((f) => f.component === 'backup-schedule'));
  if (!conns.length) return;
  await rollout.stage('backup schedule', conns, (conn) => {
    const units = ctx.files(conn.target.name).filter((f) => f.component === 'backup-schedule');
    return [
      calendarCheck(session.inv.pgbackrest.schedule),
      ...units.map((f) => renderedFileOp(f, [daemonReload])),
      ...units.filter((f) => f.path.endsWith('.timer')).map((f) => serviceStarted(f.path.split('/').pop()!)),
    ];
  });
}
