// Unit tests' inventories: a small cluster (hosts pg1..pgN at 10.1.0.N, a repository host bk) with
// the roles a test names, loaded through loadInventory with the fixture's passwords.
import { chmod, copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory, type Inventory } from '../../src/inventory/index.js';

export interface FixtureRoles {
  etcd: string[];
  postgres: string[];
  haproxy: string[];
  /** Hosts beyond those with a role (e.g. one that leaves every role). */
  extra?: string[];
  /** Host name -> tags. */
  tags?: Record<string, Record<string, boolean>>;
}

export const fixtureAddress = (name: string) => (name === 'bk' ? '10.1.0.99' : `10.1.0.${Number(name.replace(/\D/g, ''))}`);

export async function fixtureInventory(r: FixtureRoles): Promise<Inventory> {
  const names = [...new Set([...r.etcd, ...r.postgres, ...r.haproxy, ...(r.extra ?? []), 'bk'])];
  const hosts = names
    .map((n) => `  ${n}:\n    address: ${fixtureAddress(n)}\n${r.tags?.[n] ? `    tags: ${JSON.stringify(r.tags[n])}\n` : ''}`)
    .join('');
  const yaml =
    `cluster:\n  name: t\nsecrets: s.yml\nhosts:\n${hosts}roles:\n` +
    `  etcd: ${JSON.stringify(r.etcd)}\n  postgres: ${JSON.stringify(r.postgres)}\n  haproxy: ${JSON.stringify(r.haproxy)}\n  backup_repository: bk\n` +
    (r.etcd.length === 1 ? 'etcd:\n  allow_single_member: true\n' : '');
  const dir = await mkdtemp(join(tmpdir(), 'pgha-fixture-'));
  await writeFile(join(dir, 'inv.yml'), yaml);
  await copyFile('test/fixtures/secrets/test-secrets.yaml', join(dir, 's.yml'));
  await chmod(join(dir, 's.yml'), 0o600);
  return loadInventory(join(dir, 'inv.yml'));
}
