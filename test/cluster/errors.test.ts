// Operator-caused failures end with their documented exit code and a message that says what to
// do, never "internal error" (exit 70): an unreachable host, no Patroni answering (no leader
// known), a refused target, a stanza that does not exist. Read-only against the lab's cluster,
// so no write can be lost; a partitioned host is healed and the cluster verified afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha } from '../helpers.js';

let inventory: string;
const dir = mkdtempSync(join(tmpdir(), 'pgha-errors-'));

/** A copy of the lab inventory with some settings changed (relative paths made absolute). */
function variant(name: string, change: (doc: ReturnType<typeof parseDocument>) => void): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  const base = dirname(inventory);
  for (const key of [['secrets'], ['ssh', 'private_key'], ['ssh', 'known_hosts']]) {
    const v = doc.getIn(key);
    if (typeof v === 'string' && !v.startsWith('/') && !v.startsWith('~')) doc.setIn(key, resolve(base, v));
  }
  change(doc);
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, doc.toString());
  return file;
}

/** The exit code is the documented one, the message says `gist`, and nothing is reported as a bug. */
function expectFailure(r: { code: number; stdout: string; stderr: string }, code: number, gist: RegExp): void {
  const text = `${r.stdout}\n${r.stderr}`;
  assert.doesNotMatch(text, /internal error|this is a bug|^\s+at /m, text);
  assert.equal(r.code, code, text);
  assert.match(text, gist);
}

describe('operator-caused failures exit with their documented code', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    inventory = await ensureCluster();
  });
  after(async () => {
    await lab.heal('node4');
  });

  test('an unreachable host: apply, verify and backups exit 1 naming it; status says degraded (1)', async () => {
    await lab.partition('node4');
    try {
      for (const cmd of [['verify'], ['backups'], ['apply', '--check']]) {
        expectFailure(await pgha([...cmd, '-i', inventory], { timeoutMs: 120_000 }), 1, /could not connect to 1 of 4 host\(s\)[\s\S]*node4: cannot connect/);
      }
      const s = await pgha(['status', '-i', inventory, '--json'], { timeoutMs: 60_000 });
      expectFailure(s, 1, /"verdict": "degraded"/);
    } finally {
      await lab.heal('node4');
    }
  });

  test('no Patroni REST API answers (a wrong port): switchover, failover and a shared-repository backup exit 1', async () => {
    const wrongPort = variant('wrong-port', (d) => d.setIn(['patroni', 'restapi_port'], 8009));
    expectFailure(await pgha(['switchover', '-i', wrongPort, '--yes']), 1, /no Patroni REST API answers/);
    expectFailure(await pgha(['failover', '-i', wrongPort, '--candidate', 'node2', '--yes']), 1, /no Patroni REST API answers/);
    // A shared repository runs pgBackRest on the leader: with no leader known, nothing can run it.
    const shared = variant('shared-no-leader', (d) => {
      d.setIn(['patroni', 'restapi_port'], 8009);
      d.setIn(['pgbackrest', 'repository', 'type'], 'shared');
      d.deleteIn(['roles', 'backup_repository']);
    });
    expectFailure(await pgha(['backups', '-i', shared]), 1, /no Patroni leader to run pgBackRest on/);
  });

  test('a stanza that does not exist: backups 1, backup 1, restore refused (2)', async () => {
    const missing = variant('missing-stanza', (d) => d.setIn(['pgbackrest', 'stanza'], 'nosuch'));
    expectFailure(await pgha(['backups', '-i', missing]), 1, /stanza nosuch: missing stanza/);
    expectFailure(await pgha(['backup', '-i', missing]), 1, /stanza nosuch is not usable/);
    expectFailure(await pgha(['restore', '-i', missing, '--backup', 'x', '--yes']), 2, /the repository cannot restore: stanza nosuch status 1/);
  });

  test('a refused target or candidate: exit 2, nothing changed', async () => {
    expectFailure(await pgha(['restore', '-i', inventory, '--to', '2000-01-01 00:00:00+00', '--yes']), 2, /before the end of the earliest backup/);
    expectFailure(await pgha(['switchover', '-i', inventory, '--candidate', 'nosuch', '--yes']), 2, /nosuch is not a member of cluster lab/);
    const v = await pgha(['verify', '-i', inventory]);
    assert.equal(v.code, 0, v.stdout);
  });
});
