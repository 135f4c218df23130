// The archive_command wrapper (templates/pgbackrest/archive-push.sh.hbs), run with bash against a
// stand-in pgbackrest that keeps its "archive" in a directory and a stand-in curl that answers as
// etcd would (who holds the leader key): WAL an old primary wrote after a newer timeline forked
// from its own must never reach the archive under its full name, nor a whole segment pushed by a
// member without the leader key while no newer timeline says where it forks.
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

const MEMBER = 'pg1';

async function script(dcs: 'etcd' | 'etcd3' = 'etcd'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-archive-inv-'));
  writeFileSync(join(dir, 'example.yml'), readFileSync('inventories/example.yml', 'utf8'));
  copyFileSync('test/fixtures/secrets/test-secrets.yaml', join(dir, 'example.secrets.yml'));
  chmodSync(join(dir, 'example.secrets.yml'), 0o600);
  const inv = await loadInventory(join(dir, 'example.yml'));
  assert.equal(inv.hostsWithRole('postgres')[0].name, MEMBER);
  const f = renderHost(inv, MEMBER, { dcs }).find((x) => x.path === ARCHIVE_PUSH);
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
  // etcd, as the wrapper asks it (the body, a newline, the HTTP code: curl -w '\n%{http_code}'):
  // the leader key held by ETCD_LEADER (empty: no key), every member out of reach with ETCD_DOWN.
  writeFileSync(
    join(bin, 'curl'),
    `#!/bin/bash
echo "curl $*" >> ${log}
[ -n "$ETCD_DOWN" ] && { echo "curl: (7) Failed to connect" >&2; exit 7; }
case "\${@: -1}" in
*/v2/keys/*leader\\?quorum=true)
  if [ -n "$ETCD_LEADER" ]; then printf '{"action":"get","node":{"key":"/service/main/leader","value":"%s","expiration":"2026-12-02T10:00:00Z","ttl":9,"modifiedIndex":5,"createdIndex":5}}\\n200' "$ETCD_LEADER"
  else printf '{"errorCode":100,"message":"Key not found","cause":"/service/main/leader","index":9}\\n404'; fi ;;
*/v3/kv/range)
  if [ -n "$ETCD_LEADER" ]; then printf '{"header":{"revision":"9"},"kvs":[{"key":"a2V5","create_revision":"5","mod_revision":"9","version":"2","value":"%s","lease":"7587"}],"count":"1"}\\n200' "$(printf %s "$ETCD_LEADER" | base64)"
  else printf '{"header":{"revision":"9"}}\\n200'; fi ;;
*) exit 22 ;;
esac
`,
    { mode: 0o755 },
  );
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

/** Runs the wrapper; etcd says `leader` holds the leader key (this member unless told; '' for none), or does not answer (`etcdDown`). */
function run(content: string, w: ReturnType<typeof world>, wal: string, opts: { cwd?: string; leader?: string; etcdDown?: boolean } = {}) {
  const file = join(w.root, 'archive-push');
  writeFileSync(file, content, { mode: 0o755 });
  const env = { ...process.env, PATH: `${w.bin}:${process.env.PATH}`, ETCD_LEADER: opts.leader ?? MEMBER, ETCD_DOWN: opts.etcdDown ? '1' : '' };
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

test('archive-push: the newest timeline (its leader holding the key), .partial and .history files are archived', async () => {
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

test('archive-push: a newer timeline decides without etcd: an old leader that still holds the key does not push past the fork', async () => {
  const content = await script();
  const w = world(HISTORY);
  segment(w, '000000070000000000000011');
  // As PostgreSQL's archiver calls it: %p relative to the data directory.
  const r = run(content, w, 'pg_wal/000000070000000000000011', { cwd: w.data });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /not archiving 000000070000000000000011: timeline 7 forked to a newer timeline/);
  assert.ok(!existsSync(join(w.archive, '000000070000000000000011')));
  assert.ok(r.calls.every((c) => !c.startsWith('curl')), r.calls.join('\n'));
  // Written before the fork (Patroni pushes what is still marked ready before pg_rewind, the key long gone): pushed, etcd not asked.
  const before = world(HISTORY);
  segment(before, '000000070000000000000010');
  const b = run(content, before, 'pg_wal/000000070000000000000010', { cwd: before.data, leader: 'pg2' });
  assert.equal(b.code, 0, b.stderr);
  assert.ok(existsSync(join(before.archive, '000000070000000000000010')));
  assert.ok(b.calls.every((c) => !c.startsWith('curl')), b.calls.join('\n'));
});

test('archive-push: the newest timeline: pushed by the member holding the leader key (asked of etcd once, over TLS with the PostgreSQL certificate)', async () => {
  const content = await script();
  const w = world(HISTORY);
  segment(w, '000000080000000000000012');
  const r = run(content, w, 'pg_wal/000000080000000000000012', { cwd: w.data });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.calls.map((c) => c.split(' ').slice(0, 3).join(' ')),
    ['--stanza=main archive-get 00000009.history', 'curl -sS --max-time', '--stanza=main archive-push pg_wal/000000080000000000000012'],
  );
  const curl = r.calls.find((c) => c.startsWith('curl '))!;
  assert.match(curl, /--cert \/etc\/pgha\/tls\/postgres\.crt --key \/etc\/pgha\/tls\/postgres\.key /);
  assert.match(curl, /https:\/\/[^ ]+:2379\/v2\/keys\/service\/main\/leader\?quorum=true$/);
});

test('archive-push: no newer timeline and the key elsewhere, nowhere, or etcd silent: not archived yet (exit 1, PostgreSQL tries again)', async () => {
  const content = await script();
  const cases = [
    { opts: { leader: 'pg2' }, why: /this member \(pg1\) does not hold the leader key \(pg2 does\) and no newer timeline is in the archive yet; not archived yet/ },
    { opts: { leader: '' }, why: /does not hold the leader key \(nobody does\)/ },
    { opts: { etcdDown: true }, why: /no etcd member answered who holds the leader key; not archived yet/ },
  ];
  for (const { opts, why } of cases) {
    // An old primary's last segment before the new leader promoted: no newer history yet.
    const w = world(HISTORY);
    const r = run(content, w, segment(w, '000000080000000000000013'), opts);
    assert.equal(r.code, 1, `${JSON.stringify(opts)}: ${r.stderr}`);
    assert.match(r.stderr, why);
    assert.ok(!existsSync(join(w.archive, '000000080000000000000013')));
    assert.ok(r.calls.every((c) => !c.includes('archive-push')), r.calls.join('\n'));
    // Every etcd member is tried before giving up; one that answers is enough.
    assert.equal(r.calls.filter((c) => c.startsWith('curl')).length, opts.etcdDown ? 3 : 1, r.calls.join('\n'));
  }
});

test('archive-push: etcd3 (Debian 13): the leader key read through the v3 gateway decides the same way', async () => {
  const content = await script('etcd3');
  const mine = world(HISTORY);
  assert.equal(run(content, mine, segment(mine, '000000080000000000000012')).code, 0);
  assert.ok(existsSync(join(mine.archive, '000000080000000000000012')));
  const curl = readFileSync(mine.log, 'utf8').split('\n').find((c) => c.startsWith('curl '))!;
  assert.match(curl, /--data \{"key":"L3NlcnZpY2UvbWFpbi9sZWFkZXI="\} https:\/\/[^ ]+:2379\/v3\/kv\/range$/);
  const other = world(HISTORY);
  const r = run(content, other, segment(other, '000000080000000000000012'), { leader: 'pg3' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\(pg3 does\)/);
  assert.ok(!existsSync(join(other.archive, '000000080000000000000012')));
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
