// The cluster's state in the DCS, as the rendered Patroni config on a host names it: a restore
// removes it so Patroni initializes the cluster again from the restored data directory.
import { parse } from 'yaml';

export interface PatroniSetup {
  dcs: 'etcd' | 'etcd3';
  scope: string;
  namespace: string;
  dataDir: string;
  binDir: string;
}

/** Reads /etc/patroni/config.yml's text (never printed: it holds passwords). */
export function readPatroniSetup(configText: string): PatroniSetup {
  const cfg = parse(configText) as {
    scope?: string;
    namespace?: string;
    etcd?: unknown;
    etcd3?: unknown;
    postgresql?: { data_dir?: string; bin_dir?: string };
  };
  const dcs = cfg.etcd3 !== undefined ? 'etcd3' : cfg.etcd !== undefined ? 'etcd' : undefined;
  if (!dcs) throw new Error('the Patroni config has neither an etcd: nor an etcd3: section');
  if (!cfg.scope || !cfg.postgresql?.data_dir || !cfg.postgresql.bin_dir) throw new Error('the Patroni config lacks scope, postgresql.data_dir or postgresql.bin_dir');
  return { dcs, scope: cfg.scope, namespace: cfg.namespace ?? '/service/', dataDir: cfg.postgresql.data_dir, binDir: cfg.postgresql.bin_dir };
}

/** Patroni's key prefix for one cluster: NAMESPACE/SCOPE (no trailing slash). */
export function clusterKey(namespace: string, scope: string): string {
  return `/${namespace.replace(/^\/+|\/+$/g, '')}/${scope}`.replace(/^\/\//, '/');
}

/**
 * etcdctl removing every key of the cluster: the v2 store for Patroni's `etcd:` DCS, the v3
 * keyspace for `etcd3:` (with a trailing slash, so a cluster whose name merely starts the same stays).
 */
export function dcsRemoveCommand(setup: Pick<PatroniSetup, 'dcs' | 'namespace' | 'scope'>, endpoints: string[]): string[] {
  const key = clusterKey(setup.namespace, setup.scope);
  const ep = `--endpoints=${endpoints.join(',')}`;
  return setup.dcs === 'etcd'
    ? ['env', 'ETCDCTL_API=2', 'etcdctl', ep, 'rm', '--recursive', key]
    : ['env', 'ETCDCTL_API=3', 'etcdctl', ep, 'del', '--prefix', `${key}/`];
}

/** etcdctl's answer when there was nothing to remove (v2 "Key not found"; v3 deletes 0 keys and exits 0). */
export const isKeyNotFound = (stderr: string) => /Key not found/i.test(stderr);
