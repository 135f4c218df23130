// HAProxy's runtime API (the admin socket of templates/haproxy/haproxy.cfg.hbs, spoken to with
// socat on each HAProxy host): a planned leader change drains the old leader in every HAProxy
// before Patroni is asked, so no new client connection reaches a server about to be demoted,
// closes its sessions once it is demoted, and always puts the server back under its health check.
import { PghaError } from '../../errors.js';
import type { Connection } from '../../ssh/index.js';
import type { Session } from '../../session/session.js';

export const ADMIN_SOCKET = '/run/haproxy/admin.sock';
/** The backend of the primary port (the `listen primary` section). */
export const PRIMARY_BACKEND = 'primary';

/** The runtime API refused a command or could not be reached on one HAProxy host. */
export class HaproxyRuntimeError extends PghaError {}

/** Runs runtime API commands on one HAProxy host, in order; a command's answer (an error: the commands used here answer nothing when they succeed) throws. */
export async function runtimeCommands(conn: Connection, commands: string[]): Promise<void> {
  const r = await conn.run(['socat', '-t', '2', 'stdio', `UNIX-CONNECT:${ADMIN_SOCKET}`], {
    stdin: `${commands.join('; ')}\n`,
    check: false,
    timeoutMs: 10_000,
  });
  const answer = r.stdout.trim();
  if (r.code !== 0) throw new HaproxyRuntimeError(`HAProxy runtime API on ${conn.target.name}: ${r.stderr.trim() || `socat exit ${r.code}`}`);
  if (answer) throw new HaproxyRuntimeError(`HAProxy on ${conn.target.name} answered "${answer.replace(/\s+/g, ' ')}" to: ${commands.join('; ')}`);
}

/** What draining did: the hosts where the server is drained (to be restored), and a line per host where it could not be. */
export interface Drained {
  server: string;
  hosts: Connection[];
  failed: string[];
}

/**
 * Drains `server` of the primary backend in every reachable HAProxy: its open sessions go on,
 * no new connection is sent to it. A host where that fails is reported, not fatal: the
 * health check still takes the server out there, only later.
 */
export async function drainPrimary(session: Session, server: string): Promise<Drained> {
  const drained: Drained = { server, hosts: [], failed: [] };
  await Promise.all(
    session.withRole('haproxy').map(async (conn) => {
      try {
        await runtimeCommands(conn, [`set server ${PRIMARY_BACKEND}/${server} state drain`]);
        drained.hosts.push(conn);
      } catch (err) {
        drained.failed.push(err instanceof Error ? err.message : String(err));
      }
    }),
  );
  return drained;
}

/** Closes every client session HAProxy still holds to the drained server (it was demoted). Failures are returned, not thrown. */
export async function shutdownSessions(d: Drained): Promise<string[]> {
  const failed: string[] = [];
  await Promise.all(
    d.hosts.map((conn) => runtimeCommands(conn, [`shutdown sessions server ${PRIMARY_BACKEND}/${d.server}`]).catch((err) => failed.push(String(err instanceof Error ? err.message : err)))),
  );
  return failed;
}

/**
 * Puts the drained server back under its health check. When it may no longer lead, its health
 * is first forced down, so it only comes back when its check passes again (a demoted server is
 * never briefly UP on its last successful check). Failures are returned, not thrown.
 */
export async function restorePrimary(d: Drained, stillLeads: boolean): Promise<string[]> {
  const server = `${PRIMARY_BACKEND}/${d.server}`;
  const commands = [...(stillLeads ? [] : [`set server ${server} health down`]), `set server ${server} state ready`];
  const failed: string[] = [];
  await Promise.all(d.hosts.map((conn) => runtimeCommands(conn, commands).catch((err) => failed.push(String(err instanceof Error ? err.message : err)))));
  return failed;
}
