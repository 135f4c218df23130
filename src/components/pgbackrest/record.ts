// The repository's backup list, kept where it outlives the repository host: after every backup
// the repository host copies `pgbackrest info` into etcd (RECORD_BACKUPS, run by the backup units
// and by pgha's own backups). When the repository's disk is lost, that copy says which backups
// went with it.
import type { Inventory } from '../../inventory/index.js';
import type { Session } from '../../session/session.js';
import { etcdctl, etcdctlAs } from '../etcd/endpoints.js';
import { formatEpoch } from './target.js';
import { parseInfo, type StanzaInfo } from './info.js';
import { RECORD_BACKUPS, recordKey, REPO_USER } from './paths.js';

/** Copies the backup list into etcd (repository host only). true, or why not: a failed copy fails no backup. */
export async function recordBackups(session: Session): Promise<true | string> {
  const repo = session.inv.repositoryHost;
  if (!repo) return true; // a shared path outlives any one host
  const r = await session.conn(repo).run([RECORD_BACKUPS], { user: REPO_USER, check: false, timeoutMs: 60_000 });
  return r.code === 0 ? true : (r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`);
}

/** The copy in etcd (asked with etcdctl on an etcd host), with the time etcd took it; null when there is none. */
export async function readBackupRecord(session: Session): Promise<StanzaInfo | null> {
  const { inv } = session;
  for (const conn of session.withRole('etcd')) {
    const r = await conn.run(etcdctl(inv, 'get', '--print-value-only', recordKey(inv)), { ...etcdctlAs(inv), check: false, timeoutMs: 20_000 });
    if (r.code !== 0) continue;
    const text = r.stdout.trim();
    return text ? parseInfo(text, inv.pgbackrest.stanza) : null;
  }
  return null;
}

/** What a repository lost with its disk, in plain words, from the copy in etcd (null: there is no copy). */
export function describeLost(inv: Inventory, recorded: StanzaInfo | null): string {
  const repo = inv.repositoryHost?.name ?? 'the repository host';
  if (!recorded) return `lost with ${repo}'s old disk: every backup and all archived WAL it held (pgha has no copy of its backup list in etcd to name them)`;
  const backups = recorded.backups.filter((b) => !b.error);
  if (!backups.length) return `${repo}'s old disk held no backup (pgha's copy of its backup list in etcd); its archived WAL is lost`;
  const list = backups.map((b) => `${b.label} (${b.type}, finished ${formatEpoch(b.stop)})`).join(', ');
  const wal = recorded.archiveMin && recorded.archiveMax ? `, and the WAL archived from ${recorded.archiveMin} to ${recorded.archiveMax}` : '';
  return `lost with ${repo}'s old disk: ${backups.length} backup${backups.length === 1 ? '' : 's'}, ${list}${wal}: no restore can reach a time before the new full backup`;
}
