// Where pgBackRest lives and how PostgreSQL and Patroni call it, derived from the inventory alone (pure).
import type { Inventory } from '../../inventory/index.js';

/**
 * archive_command: pgbackrest archive-push, minus an old primary's WAL written after a failover
 * (see the template). pgBackRest's check wants "pgbackrest" in archive_command, hence the name.
 */
export const ARCHIVE_PUSH = '/usr/local/lib/pgha/pgbackrest-archive-push';
export const PGBACKREST_CONF = '/etc/pgbackrest.conf';
/** SSH client config of user postgres on database hosts: one shared connection to the repository host. */
export const PGBACKREST_SSH_CONFIG = '/var/lib/postgresql/.ssh/config';
export const REPO_USER = 'pgbackrest';
export const REPO_HOME = '/var/lib/pgbackrest';
export const LOG_DIR = '/var/log/pgbackrest';
/** On the repository host: copies the backup list into etcd after every backup (see record.ts). */
export const RECORD_BACKUPS = '/usr/local/lib/pgha/pgbackrest-record-backups';
/** The etcd key (v3 keyspace, not Patroni's) holding the repository's last backup list. */
export const recordKey = (inv: Inventory) => `/pgha/${inv.cluster.name}/pgbackrest/${inv.pgbackrest.stanza}/info`;
export const SPOOL_DIR = '/var/spool/pgbackrest';

export const archiveCommand = () => `${ARCHIVE_PUSH} %p`;
/** PostgreSQL's restore_command (Patroni's recovery_conf). */
export const restoreCommand = (inv: Inventory) => `pgbackrest --stanza=${inv.pgbackrest.stanza} archive-get %f %p`;
/** Patroni's create_replica_methods entry: a replica cloned from the repository. */
export const replicaRestoreCommand = (inv: Inventory) => `pgbackrest --stanza=${inv.pgbackrest.stanza} --delta restore`;
/** pgBackRest's log of one command (backup, restore, ...) for the stanza. */
export const logFile = (inv: Inventory, command: string) => `${LOG_DIR}/${inv.pgbackrest.stanza}-${command}.log`;
