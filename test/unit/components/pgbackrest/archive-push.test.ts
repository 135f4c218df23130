// The archive_command wrapper (templates/pgbackrest-archive-push.sh.hbs), run with bash against a stand-in
// pgbackrest that keeps its "archive" in a directory: WAL an old primary wrote after a newer
// timeline forked from its own must never reach the archive under its full name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInventory } from '../../../../src/inventory/index.js';
import { renderHost } from '../../../../src/components/index.js';
import { ARCHIVE_PUSH } from '../../../../src/components/pgbackrest/paths.js';

const SEGMENT = 16 * 1024 * 1024;

async function script(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-archive-inv-'));
  writeFileSync(join(dir, 'example.yml'), readFileSync('inventories/example.yml', 'utf8'));
  copyFileSync('test/fixtures/secrets/test-secrets.yaml', join(dir, 'example.secrets.yml'));
  chmodSync(join(dir, 'example.secrets.yml'), 0o600);
  const inv = await loadInventory(join(dir, 'example.yml'));
  const f = renderHost(inv, inv.hostsWithRole('postgres')[0].name, { dcs: 'etcd' }).find((x) => x.path === ARCHIVE_PUSH);
  assert.ok(f, 'rendered for a database host');
  assert.equal(f.mode, 0o755);
  return f.content;
}

/** A data directory, an archive holding the given history files, and a pgbackrest stand-in. */
function world(history: Record<string, string>) {
  const root = mkdtempSync(join(tmpdir(), 'pgha-archive-'));
  const bin = join(root, 'bin');
  const archive = join(root, 'archive');
  const data = join(root, 'data');
  for (const d of [bin, archive, join(data, 'pg_wal')]) mkdirSync(d, { recursive: true });
  for (const [name, text] of Object.entries(history)) writeFileSync(join(archive, name), text);
  const log = join(root, 'calls');
  // Patroni's /primary on this host, were it asked: the code in PRIMARY_CODE.
  writeFileSync(join(bin, 'curl'), `#!/bin/bash\necho "curl $*" >> ${log}\nprintf '%s' "\${PRIMARY_CODE:-503}"\n`, { mode: 0o755 });
  writeFileSync(
    join(bin, 'pgbackrest'),
    `#!/bin/bash
echo "$*" >> ${log}
case $2 in
archive-get) [ -f ${archive}/$3 ] || exit 1; cp ${archive}/$3 "$4" ;;
archive-push) cp "$3" ${archive}/ ;;
*) exit 9 ;;
esac
`,
    { mode: 0o755 },
  );
  return { root, bin, archive, data, log };
}

function run(content: string, w: ReturnType<typeof world>, wal: string, opts: { cwd?: string; primaryCode?: string } = {}) {
  const file = join(w.root, 'archive-push');
  writeFileSync(file, content, { mode: 0o755 });
  const env = { ...process.env, PATH: `${w.bin}:${process.env.PATH}`, PRIMARY_CODE: opts.primaryCode ?? '503' };
  const r = spawnSync('bash', [file, wal], { cwd: opts.cwd ?? w.root, env, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, calls: existsSync(w.log) ? readFileSync(w.log, 'utf8').trim().split('\n') : [] };
}

function segment(w: ReturnType<typeof world>, name: string): string {
  const p = join(w.data, 'pg_wal', name);
  writeFileSync(p, '');
  truncateSync(p, SEGMENT);
  return p;
}

// Not the leader (an old primary shutting down, or Patroni before pg_rewind).
// Timeline 7 forked to 8 at 0/11004F00 (inside segment ...11); timeline 6 forked to 7 at 0/10004E30.
const HISTORY = {
  '00000007.history': '1\t0/9018E80\tno recovery target specified\n\n6\t0/10004E30\tno recovery target specified\n',
  '00000008.history': '1\t0/9018E80\tno recovery target specified\n\n6\t0/10004E30\tno recovery target specified\n\n7\t0/11004F00\tno recovery target specified\n',
};

test('archive-push: a stopped old primary does not archive the segment holding the fork, nor later ones', async () => {
  const content = await script();
  for (const name of ['000000070000000000000011', '000000070000000000000012', '000000060000000000000010']) {
    const w = world(HISTORY);
    const r = run(content, w, segment(w, name));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^pgha archive-push: not archiving ${name}: timeline ${parseInt(name.slice(0, 8), 16)} forked to a newer timeline at `));
    assert.ok(!existsSync(join(w.archive, name)), `${name} must stay out of the archive`);
    assert.ok(r.calls.every((c) => !c.includes('archive-push')), r.calls.join('\n'));
  }
});

test('archive-push: WAL written before the fork is archived', async () => {
  const content = await script();
  for (const name of ['000000070000000000000010', '00000006000000000000000F']) {
    const w = world(HISTORY);
    const r = run(content, w, segment(w, name));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls.at(-1), `--stanza=main archive-push ${join(w.data, 'pg_wal', name)}`);
    assert.ok(existsSync(join(w.archive, name)));
  }
});

test('archive-push: the newest timeline, .partial and .history files are archived without a look at the history', async () => {
  const content = await script();
  const w = world(HISTORY);
  assert.equal(run(content, w, segment(w, '000000080000000000000011')).code, 0);
  assert.ok(existsSync(join(w.archive, '000000080000000000000011')), 'no newer timeline: pushed');
  for (const name of ['000000070000000000000011.partial', '00000009.history']) {
    const r = run(content, w, segment(w, name));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.calls.at(-1), `--stanza=main archive-push ${join(w.data, 'pg_wal', name)}`);
  }
});

test("archive-push: Patroni's word is not asked: an old leader back from a partition (it still answers 200 on /primary) is checked like any member", async () => {
  const content = await script();
  const w = world(HISTORY);
  segment(w, '000000070000000000000011');
  // As PostgreSQL's archiver calls it: %p relative to the data directory.
  const r = run(content, w, 'pg_wal/000000070000000000000011', { cwd: w.data, primaryCode: '200' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /not archiving 000000070000000000000011: timeline 7 forked to a newer timeline/);
  assert.ok(!existsSync(join(w.archive, '000000070000000000000011')));
  assert.ok(r.calls.every((c) => !c.startsWith('curl')), r.calls.join('\n'));
  // The leader of the newest timeline: one look for the next timeline's history (not there), then pushed.
  const leader = world(HISTORY);
  segment(leader, '000000080000000000000012');
  const l = run(content, leader, 'pg_wal/000000080000000000000012', { cwd: leader.data });
  assert.equal(l.code, 0, l.stderr);
  assert.deepEqual(l.calls.map((c) => c.split(' ').slice(0, 3).join(' ')), ['--stanza=main archive-get 00000009.history', '--stanza=main archive-push pg_wal/000000080000000000000012']);
});

test('archive-push: the history out of reach (not "not found") means no push now: the exit code tells PostgreSQL to retry', async () => {
  const content = await script();
  const w = world(HISTORY);
  const p = segment(w, '000000070000000000000011');
  writeFileSync(join(w.bin, 'pgbackrest'), `#!/bin/bash\necho "$*" >> ${w.log}\n[ "$2" = archive-get ] && exit 103\ncp "$3" ${w.archive}/\n`, { mode: 0o755 });
  const r = run(content, w, p);
  assert.equal(r.code, 103);
  assert.match(r.stderr, /cannot read 00000008\.history from the archive \(pgbackrest exit 103\); not archived yet/);
  assert.ok(!existsSync(join(w.archive, '000000070000000000000011')));
  assert.ok(r.calls.every((c) => !c.includes('archive-push')), r.calls.join('\n'));
});

test('archive-push: a failing push passes its exit code on', async () => {
  const content = await script();
  const w = world({});
  const p = segment(w, '000000010000000000000003');
  writeFileSync(join(w.bin, 'pgbackrest'), '#!/bin/bash\nexit 82\n', { mode: 0o755 });
  assert.equal(run(content, w, p).code, 82);
});
