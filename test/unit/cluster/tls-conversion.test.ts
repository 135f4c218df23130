// Moving a running cluster to TLS is found from the hosts' config files: each etcd and Patroni
// config pgha renders, in each step of the move, is recognised as that step (so an interrupted
// move is finished by the next apply).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../../src/inventory/index.js';
import { etcdConfigFile } from '../../../src/components/etcd/index.js';
import { patroniConfigFile } from '../../../src/components/patroni/files.js';
import { etcdConfigState, patroniConfigState } from '../../../src/cluster/tls-conversion.js';
import { RELEASES } from '../../../src/components/base/release.js';
import type { Platform } from '../../../src/components/types.js';

const BOOKWORM: Platform = { release: RELEASES.bookworm, patroniVersions: ['3.0.2'] };

async function inventory(tls: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-conv-'));
  writeFileSync(join(dir, 'example.yml'), readFileSync('inventories/example.yml', 'utf8') + (tls ? '' : '\ntls: false\n'));
  copyFileSync('test/fixtures/secrets/test-secrets.yaml', join(dir, 'example.secrets.yml'));
  chmodSync(join(dir, 'example.secrets.yml'), 0o600);
  return loadInventory(join(dir, 'example.yml'));
}

test('etcd: every step of the move is recognised from the rendered file', async () => {
  const inv = await inventory(true);
  const h = inv.host('pg1');
  assert.equal(etcdConfigState(etcdConfigFile(await inventory(false), h, 'etcd').content), 'plain');
  const trust = etcdConfigFile(inv, h, 'etcd', { transport: 'trust' }).content;
  assert.equal(etcdConfigState(trust), 'trust');
  // Still clear text everywhere, but the peer certificate and the CA are there for TLS peers.
  assert.match(trust, /^ETCD_LISTEN_PEER_URLS="http:\/\/10\.0\.10\.11:2380"$/m);
  assert.match(trust, /^ETCD_PEER_CERT_FILE="\/etc\/pgha\/tls\/etcd\.crt"$/m);
  assert.doesNotMatch(trust, /^ETCD_CERT_FILE/m);
  const transition = etcdConfigFile(inv, h, 'etcd', { transport: 'transition' }).content;
  assert.equal(etcdConfigState(transition), 'transition');
  assert.match(transition, /^ETCD_LISTEN_CLIENT_URLS="http:\/\/10\.0\.10\.11:2379,https:\/\/10\.0\.10\.11:2379"$/m);
  assert.match(transition, /^ETCD_LISTEN_PEER_URLS="https:\/\/10\.0\.10\.11:2380"$/m);
  assert.equal(etcdConfigState(etcdConfigFile(inv, h, 'etcd').content), 'tls');
});

test('Patroni: clear text, PostgreSQL serving TLS only, and TLS on every link are told apart', async () => {
  const inv = await inventory(true);
  const h = inv.host('pg2');
  assert.equal(patroniConfigState(patroniConfigFile(await inventory(false), h, 'etcd', BOOKWORM).content), 'plain');
  const sslOnly = patroniConfigFile(inv, h, 'etcd', BOOKWORM, 'ssl-only').content;
  assert.equal(patroniConfigState(sslOnly), 'ssl-only');
  // ssl on, but nothing else changes yet: the REST API, the DCS and pg_hba stay as they were.
  assert.match(sslOnly, /ssl: "on"/);
  assert.doesNotMatch(sslOnly, /hostssl|protocol: https|certfile/);
  assert.equal(patroniConfigState(patroniConfigFile(inv, h, 'etcd', BOOKWORM).content), 'tls');
});
