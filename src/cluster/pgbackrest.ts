// pgBackRest as the cluster runs it: where its commands run, and its info read properly.
import type { Connection } from '../ssh/index.js';
import type { Session } from './session.js';
import { anyPatroniCluster, leaderOf } from './probes.js';

/** Where pgBackRest commands run: the repository host (as pgbackrest), or the leader (shared path). */
export async function pgbackrestRunner(session: Session): Promise<{ conn: Connection; user: string }> {
  const { inv, conns } = session;
  if (inv.repositoryHost) return { conn: session.conn(inv.repositoryHost), user: 'pgbackrest' };
  const found = await anyPatroniCluster(inv, (h) => conns.get(h.name));
  const leader = found && leaderOf(found.cluster);
  if (!leader) throw new Error('no Patroni leader to run pgBackRest on');
  return { conn: session.conn(leader.name), user: 'postgres' };
}

export interface StanzaInfo {
  code: number;
  message: string;
  backups: { label: string; type: string; start: number; stop: number; size: number; repoSize: number }[];
  archiveMax?: string;
}

/** `pgbackrest info --output=json` read properly: its exit code is 0 even for a broken stanza. */
export function parseInfo(json: string, stanza: string): StanzaInfo {
  const all = JSON.parse(json) as {
    name: string;
    status: { code: number; message: string };
    backup?: { label: string; type: string; timestamp: { start: number; stop: number }; info: { size: number; repository: { size: number } } }[];
    archive?: { max?: string }[];
  }[];
  const s = all.find((x) => x.name === stanza);
  if (!s) return { code: 1, message: 'missing stanza', backups: [] };
  return {
    code: s.status.code,
    message: s.status.message,
    backups: (s.backup ?? []).map((b) => ({
      label: b.label,
      type: b.type,
      start: b.timestamp.start,
      stop: b.timestamp.stop,
      size: b.info.size,
      repoSize: b.info.repository.size,
    })),
    archiveMax: s.archive?.find((a) => a.max)?.max,
  };
}

export async function stanzaInfo(session: Session): Promise<StanzaInfo> {
  const { conn, user } = await pgbackrestRunner(session);
  const stanza = session.inv.pgbackrest.stanza;
  const r = await conn.run(['pgbackrest', `--stanza=${stanza}`, '--output=json', 'info'], { user, timeoutMs: 60_000 });
  return parseInfo(r.stdout, stanza);
}
