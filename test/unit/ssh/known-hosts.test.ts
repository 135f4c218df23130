import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKnownHosts, replaceKnownHost, verifyHostKey } from '../../../src/ssh/known-hosts.js';

// ssh key blobs: a length-prefixed type name, then key bytes.
const blob = (type: string, fill: number) => Buffer.concat([Buffer.from([0, 0, 0, type.length]), Buffer.from(type), Buffer.alloc(32, fill)]);
const line = (hosts: string, key: Buffer) => `${hosts} ssh-ed25519 ${key.toString('base64')}`;

test("a rebuilt host's new key replaces every entry that names it; other hosts and markers stay; mode kept", () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-kh-'));
  const file = join(dir, 'known_hosts');
  const old = blob('ssh-ed25519', 1);
  const other = blob('ssh-ed25519', 2);
  const fresh = blob('ssh-ed25519', 3);
  writeFileSync(
    file,
    [
      '# the lab',
      line('10.0.0.3,node3', old),
      `10.0.0.3 ecdsa-sha2-nistp256 ${blob('ecdsa-sha2-nistp256', 4).toString('base64')}`,
      line('10.0.0.4,node4', other),
      `@revoked 10.0.0.3 ssh-ed25519 ${blob('ssh-ed25519', 5).toString('base64')}`,
      line('[10.0.0.3]:2222', other),
      '',
    ].join('\n'),
    { mode: 0o640 },
  );
  assert.equal(verifyHostKey(readKnownHosts(file), '10.0.0.3', 22, fresh).status, 'changed');
  const dropped = replaceKnownHost(file, '10.0.0.3', 22, fresh);
  assert.deepEqual(dropped.map((e) => e.line), [2, 3]);
  assert.deepEqual(readFileSync(file, 'utf8').split('\n'), [
    '# the lab',
    line('10.0.0.4,node4', other),
    `@revoked 10.0.0.3 ssh-ed25519 ${blob('ssh-ed25519', 5).toString('base64')}`,
    line('[10.0.0.3]:2222', other),
    line('10.0.0.3', fresh),
    '',
  ]);
  assert.equal(verifyHostKey(readKnownHosts(file), '10.0.0.3', 22, fresh).status, 'match');
  assert.equal(verifyHostKey(readKnownHosts(file), '10.0.0.4', 22, other).status, 'match');
  assert.equal(statSync(file).mode & 0o777, 0o640);
  // A file that does not exist yet: created 0600.
  const created = join(dir, 'sub', 'known_hosts');
  replaceKnownHost(created, 'db.example', 2222, fresh);
  assert.equal(readFileSync(created, 'utf8'), `${line('[db.example]:2222', fresh)}\n`);
  assert.equal(statSync(created).mode & 0o777, 0o600);
});
