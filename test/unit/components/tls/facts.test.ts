// The TLS facts script, run for real (sh, stat, openssl) on files in a temporary directory in
// place of the hosts' TLS directory: a full answer names the files' identity, the same identity
// given back gets "same", and any change to a file (its mode, its content rewritten) a full answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTlsFacts, tlsFactsCommand, tlsFactsIdentity, tlsFactsSame } from '../../../../src/components/tls/facts.js';
import { TLS_DIR } from '../../../../src/components/tls/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-tls-facts-'));
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'etcd.key')], { stdio: 'ignore' });
chmodSync(join(dir, 'etcd.key'), 0o600);
execFileSync('openssl', ['req', '-new', '-x509', '-key', join(dir, 'etcd.key'), '-subj', '/CN=pg1', '-days', '30', '-out', join(dir, 'etcd.crt')], { stdio: 'ignore' });
writeFileSync(join(dir, 'ca.crt'), readFileSync(join(dir, 'etcd.crt')));

/** The script as a host runs it, on `dir` instead of the TLS directory. */
function ask(known?: string): string {
  const { cmd } = tlsFactsCommand(['etcd', 'postgres'], known);
  const argv = (cmd as string[]).map((a) => a.replaceAll(TLS_DIR, dir));
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('TLS facts: a full answer with the files identity; the same identity back: "same"; a changed mode or a rewritten file: full again', () => {
  const first = ask();
  const id = tlsFactsIdentity(first);
  assert.match(id, /etcd\.key \d+:\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ /);
  // The missing postgres files are part of the identity too (a file that appears changes it).
  assert.match(id, /postgres\.key/);
  const facts = parseTlsFacts(first);
  assert.match(facts.services.etcd?.key?.publicKeyPem ?? '', /BEGIN PUBLIC KEY/);
  assert.equal(facts.services.etcd?.key?.mode, 0o600);
  assert.match(facts.services.etcd?.cert?.pem ?? '', /BEGIN CERTIFICATE/);
  assert.equal(facts.services.postgres?.key, null);
  assert.match(facts.bundle ?? '', /BEGIN CERTIFICATE/);
  assert.ok(!tlsFactsSame(first));

  const again = ask(id);
  assert.ok(tlsFactsSame(again), again);
  assert.equal(again.trim(), '@@same');
  assert.ok(!tlsFactsSame(ask('')));
  assert.ok(!tlsFactsSame(ask(`${id}x`)));

  chmodSync(join(dir, 'etcd.key'), 0o644);
  const opened = ask(id);
  assert.ok(!tlsFactsSame(opened));
  assert.equal(parseTlsFacts(opened).services.etcd?.key?.mode, 0o644);
  chmodSync(join(dir, 'etcd.key'), 0o600);
  const back = tlsFactsIdentity(ask());
  // The same bytes written again: a new change time, so a full answer.
  writeFileSync(join(dir, 'etcd.crt'), readFileSync(join(dir, 'etcd.crt')));
  assert.ok(!tlsFactsSame(ask(back)));
  assert.notEqual(tlsFactsIdentity(ask()), back);
});
