// Secrets never reach pgha's output: files that hold passwords are diffed masked by structure
// (old values on the host included), renders keep their modes, the password reaches psql and
// curl whole and only as itself, and every output path masks what it prints.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { fileOp as renderedFileOp } from '../../../src/render/op.js';
import { dynamicConfigPatch } from '../../../src/components/patroni/config.js';
import { secretMasker } from '../../../src/session/session.js';
import { curlAuthConfig, curlConfigValue, httpFrom, sqlVia } from '../../../src/session/remote.js';
import { Facts, file, Reporter, Rollout } from '../../../src/engine/index.js';
import { loadInventory, type Inventory } from '../../../src/inventory/index.js';
import { renderHost } from '../../../src/components/index.js';
import { renderToDir } from '../../../src/flows/render/command.js';
import { status } from '../../../src/flows/status/command.js';
import { createContext } from '../../../src/cli/context.js';
import { yamlSecretMask } from '../../../src/render/secret-mask.js';
import { LocalConnection, localTarget, Masker, shellQuote } from '../../../src/ssh/index.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Hostile but valid passwords: quotes, backslashes, outer and inner spaces, unicode.
const OLD = {
  superuser_password: ` old "super" \\ pw é `,
  replication_password: `old'repl'pw\\n"x"`,
  rewind_password: `old rewind ✓ 'pw'`,
  restapi_password: `old-rest\\"api-pw`,
};
const NEW = {
  superuser_password: `  new "super" \\ pw ü  `,
  replication_password: `new'repl'pw\\t"y"`,
  rewind_password: `new rewind ✗ 'pw'`,
  restapi_password: `new-rest\\"api-pw`,
};

/** Every spelling a password could take in pgha's output. */
function spellings(pw: string): string[] {
  const json = JSON.stringify(pw).slice(1, -1);
  return [...new Set([pw, json, shellQuote(pw), shellQuote(json), pw.trim()])];
}

function assertNoSecret(text: string, secrets: object): void {
  for (const pw of Object.values(secrets) as string[]) {
    for (const s of spellings(pw)) assert.ok(!text.includes(s), `a password (spelled ${JSON.stringify(s)}) was shown:\n${text}`);
  }
}

/** inventories/example.yml with these secrets (and an edit to the YAML). */
async function inventory(name: string, secrets: object, edit: (y: string) => string = (y) => y): Promise<Inventory> {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, 'example.yml'), edit(readFileSync('inventories/example.yml', 'utf8')));
  writeFileSync(join(d, 'example.secrets.yml'), stringify(secrets), { mode: 0o600 });
  return loadInventory(join(d, 'example.yml'));
}

function capture(masker?: Masker): { reporter: Reporter; text: () => string } {
  const out = new PassThrough();
  let buf = '';
  out.on('data', (d) => (buf += d));
  return { reporter: new Reporter({ out, tty: false, masker }), text: () => buf };
}

describe('structural masking of YAML', () => {
  const mask = yamlSecretMask((k) => /password$/i.test(k));

  test('every value under a secret key is replaced in place; comments, order and the rest stay', () => {
    const src = [
      '# top comment',
      'restapi:',
      '  authentication:',
      '    username: patroni',
      '    password: "a \\"b\\" \\\\ c" # kept comment',
      'block:',
      '  password: |',
      '    multi line',
      '    secret',
      '  after: 1',
      "flow: {password: 'it''s', user: x}",
      'anchored: &pw s3cr3t-anchored',
      'other:',
      '  keyfile_password: *pw',
      'map:',
      '  password:',
      '    inner: nested-secret',
      '  kept: yes',
      '',
    ].join('\n');
    assert.deepEqual(mask(src), {
      text: [
        '# top comment',
        'restapi:',
        '  authentication:',
        '    username: patroni',
        '    password: "********" # kept comment',
        'block:',
        '  password: "********"',
        '  after: 1',
        'flow: {password: "********", user: x}',
        'anchored: &pw "********"',
        'other:',
        '  keyfile_password: *pw',
        'map:',
        '  password:',
        '    "********"',
        '  kept: yes',
        '',
      ].join('\n'),
      secrets: ['a "b" \\ c', 'multi line\nsecret\n', "it's", 's3cr3t-anchored', 'nested-secret'],
    });
  });

  test('an unparsable file: an error naming the line, never the content', () => {
    const r = mask('a: b\npassword: "se cret" trailing\n');
    assert.deepEqual(r, { error: 'not valid YAML at line 2' });
  });
});

describe('file diffs of secret files (apply --check, -v)', () => {
  const conn = new LocalConnection(localTarget({ name: 'local' }));
  const mask = yamlSecretMask((k) => k === 'password');

  test('only a password changed: named, not shown, on neither side', async () => {
    const path = join(dir, 'only-secret.yml');
    writeFileSync(path, 'user: app\npassword: "old \\"pw\\""\n');
    const change = await file(path, 'user: app\npassword: "new \\"pw\\""\n', { mask }).check(conn, new Facts(conn));
    assert.deepEqual(change, { summary: 'content (secret values changed; not shown)', diff: undefined });
  });

  test('a new file: its diff shows the structure, masked', async () => {
    const change = await file(join(dir, 'new.yml'), 'user: app\npassword: "new \\"pw\\""\n', { mask }).check(conn, new Facts(conn));
    assert.equal(change?.summary, 'create');
    assert.match(change?.diff ?? '', /^\+user: app\n\+password: "\*{8}"$/m);
  });

  test('a secret file that declares no mask shows no diff at all', async () => {
    const path = join(dir, 'unmasked.conf');
    writeFileSync(path, 'secret = old-value\n');
    const f = { path, content: 'secret = new-value\n', owner: undefined as unknown as string, group: undefined as unknown as string, mode: 0o644, component: 'patroni' as const, secret: true };
    assert.deepEqual(await renderedFileOp(f).check(conn, new Facts(conn)), { summary: 'content', diff: undefined });
  });

  test('an unparsable file on the host: no diff at all, and why', async () => {
    const path = join(dir, 'broken.yml');
    writeFileSync(path, 'user: app\npassword: "old pw" broken\n');
    const change = await file(path, 'user: app\npassword: "new pw"\n', { mask }).check(conn, new Facts(conn));
    assert.deepEqual(change, { summary: 'content (no diff: the file on the host is not valid YAML at line 2)', diff: undefined });
  });

  test('apply --check of the Patroni config: old and new hostile passwords never shown; other changes are', async () => {
    const oldInv = await inventory('old', OLD, (y) =>
      y.replace('max_connections: 200', 'max_connections: 100').replace('patroni:\n  restapi_port:', 'patroni:\n  users:\n    restapi: oldapi\n  restapi_port:'),
    );
    const newInv = await inventory('new', NEW);
    const oldCfg = renderHost(oldInv, 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/patroni/config.yml')!;
    const newCfg = renderHost(newInv, 'pg1', { dcs: 'etcd' }).find((f) => f.path === '/etc/patroni/config.yml')!;
    // The "host" file holds the OLD passwords, in the JSON spelling Patroni's config has.
    const hostPath = join(dir, 'patroni-config.yml');
    writeFileSync(hostPath, oldCfg.content, { mode: 0o600 });
    assert.ok(oldCfg.content.includes(JSON.stringify(OLD.superuser_password)));

    // Without any text masker (the structure alone must hide them) and as apply runs (the
    // session's masker, which knows only the new passwords).
    for (const masker of [new Masker(), secretMasker(newInv)]) {
      const { reporter, text } = capture(masker);
      const c = new LocalConnection(localTarget({ name: 'pg1' }), { masker, onCommand: reporter.command });
      const rollout = new Rollout({ check: true, reporter });
      const op = renderedFileOp({ ...newCfg, path: hostPath, owner: undefined as unknown as string, group: undefined as unknown as string });
      const r = await rollout.stage('patroni config', [c], () => [op]);
      rollout.finish();
      const out = text();
      assert.equal(r.changed, 1);
      assert.match(out, /^pg1: would change file .*patroni-config\.yml: content \(secret values changed; not shown\)$/m);
      assert.match(out, /^ {4}- {8}"max_connections": 100$/m);
      assert.match(out, /^ {4}\+ {8}"max_connections": 200$/m);
      assert.match(out, /^ {4}- {4}username: "oldapi"\n {4}\+ {4}username: "patroni"\n {9}password: "\*{8}"$/m);
      assertNoSecret(out, OLD);
      assertNoSecret(out, NEW);
    }
  });
});

describe('render --show-secrets and modes', () => {
  test('every write sets the documented mode, over files of another mode', async () => {
    const inv = await inventory('render', NEW);
    const out = join(dir, 'render-out');
    const cfg = join(out, 'pg1/etc/patroni/config.yml');
    const haproxy = join(out, 'pg1/etc/haproxy/haproxy.cfg');
    // A masked render first: 0644 everywhere.
    await renderToDir(inv, out, { dcs: 'etcd', host: 'pg1' });
    assert.equal(statSync(cfg).mode & 0o777, 0o644);
    // The real passwords over it: 0600, not the 0644 the file had.
    await renderToDir(inv, out, { dcs: 'etcd', host: 'pg1', showSecrets: true });
    assert.equal(statSync(cfg).mode & 0o777, 0o600);
    assert.ok(readFileSync(cfg, 'utf8').includes(JSON.stringify(NEW.superuser_password)));
    // Masked again over the 0600 file: 0644, and no password left; whatever the umask.
    chmodSync(haproxy, 0o600);
    const umask = process.umask(0o077);
    try {
      await renderToDir(inv, out, { dcs: 'etcd', host: 'pg1' });
    } finally {
      process.umask(umask);
    }
    assert.equal(statSync(cfg).mode & 0o777, 0o644);
    assert.equal(statSync(haproxy).mode & 0o777, 0o644);
    assertNoSecret(readFileSync(cfg, 'utf8'), NEW);
    assert.match(readFileSync(cfg, 'utf8'), /^ {6}password: "\*{8}"$/m);
    assert.ok(lstatSync(cfg).isFile());
  });
});

describe('the password reaches psql and curl whole, and only as itself', () => {
  test('sqlVia: leading and trailing spaces are part of the password', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'psql'), '#!/bin/sh\nprintf "[%s]" "$PGPASSWORD"\n', { mode: 0o755 });
    const inv = { patroni: { users: { superuser: 'postgres' } }, tls: { enabled: false }, secrets: { superuser_password: '  spaced out pw  ' } } as unknown as Inventory;
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const r = await sqlVia(inv, new LocalConnection(), { host: '127.0.0.1', port: 5000 }, 'select 1');
      assert.equal(r.stdout, '[  spaced out pw  ]');
    } finally {
      process.env.PATH = path;
    }
  });

  test('curl config values use the escapes curl documents', () => {
    assert.equal(curlConfigValue('a"b\\c\td\ne\rf\vg é'), '"a\\"b\\\\c\\td\\ne\\rf\\vg é"');
    assert.throws(() => curlConfigValue('a\0b'), /NUL/);
  });

  test('curl -K -: a hostile restapi_password is one credential, not more options', async () => {
    const requests: IncomingMessage[] = [];
    const server = createServer((req, res) => {
      requests.push(req);
      res.end('{}');
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const evil = join(dir, 'evil-output');
    // Unescaped, its line breaks would add a second URL (sent the credentials too) and an output file.
    const hostile = `p\\w"\nurl = ${base}/other\noutput = ${evil}\n\t\r\v é "x`;
    const inv = { patroni: { users: { restapi: 'patroni' } }, secrets: { restapi_password: hostile } } as unknown as Inventory;
    let r;
    try {
      r = await httpFrom(new LocalConnection(), 'GET', `${base}/cluster`, { auth: inv });
    } finally {
      server.close();
    }
    assert.deepEqual(
      requests.map((q) => [q.method, q.url, q.headers.authorization]),
      [['GET', '/cluster', `Basic ${Buffer.from(`patroni:${hostile}`).toString('base64')}`]],
    );
    assert.deepEqual(r, { status: 200, body: '{}' });
    assert.ok(!existsSync(evil), 'curl wrote an output file');
    assert.equal(curlAuthConfig(inv).split('\n').length, 2, 'one line and its end');
  });
});

describe('every other output path', () => {
  test('the masker knows the JSON spelling (config files, JSON output) and the shell ones', () => {
    const m = new Masker(['a "b" \\c']);
    assert.equal(m.mask(`password: ${JSON.stringify('a "b" \\c')}`), 'password: "********"');
    assert.equal(m.mask(JSON.stringify({ error: 'x a "b" \\c y' })), '{"error":"x ******** y"}');
    assert.equal(m.mask(`echo ${shellQuote('a "b" \\c')}`), 'echo ********');
  });

  test('stderr of a command is masked for every caller (errors, warnings, status)', async () => {
    const conn = new LocalConnection(localTarget(), { masker: new Masker([NEW.superuser_password]) });
    const r = await conn.run(['sh', '-c', 'printf "%s|%s" "$1" "$2" >&2', 'sh', NEW.superuser_password, JSON.stringify(NEW.superuser_password)], {
      check: false,
    });
    assert.equal(r.stderr, '********|"********"');
  });

  test('the reporter masks every line it prints', () => {
    const { reporter, text } = capture(new Masker([NEW.restapi_password]));
    reporter.opResult('pg1', 'op', 'failed', false, null, `curl said ${JSON.stringify(NEW.restapi_password)}`);
    reporter.waitEnd('gate', false, `no: ${NEW.restapi_password}`);
    assert.equal(text(), 'pg1: FAILED op: curl said "********"\ngate: not ready: no: ********\n');
  });

  test('status --json masks whatever the hosts answered, in its JSON spelling too', async () => {
    // A secret that turns up in an error (here, as the private key's name: reading the key fails
    // before any connection is tried, so no host is reached).
    const secret = 'key "s3cret" \\ name';
    const inv = await inventory('status', { ...NEW, rewind_password: secret }, (y) =>
      y.replace('private_key: ~/.ssh/id_ed25519', `private_key: ${JSON.stringify(secret)}`),
    );
    let out = '';
    const code = await status(createContext({ inventoryFile: inv.file, out: (t) => (out += t) }), { json: true });
    assert.equal(code, 2);
    const report = JSON.parse(out) as { hosts: { error: string }[] };
    assert.match(report.hosts[0].error, /^cannot read the private key .*\/\*{8}: ENOENT$/);
    assertNoSecret(out, { secret });
  });

  test('PATCH /config summaries never show a value under a secret key', () => {
    const live = { standby_cluster: { host: 'a', password: 'live-secret' }, postgresql: { parameters: { primary_conninfo: 'password=old-secret', work_mem: '4MB' } } };
    const wanted = { standby_cluster: { host: 'b', password: 'new-secret' }, postgresql: { parameters: { work_mem: '8MB' } } };
    const { patch, changes } = dynamicConfigPatch(live, wanted);
    assert.deepEqual(changes, [
      'standby_cluster {"host":"a","password":"********"} -> {"host":"b","password":"********"}',
      'postgresql.parameters.work_mem "4MB" -> "8MB"',
      'postgresql.parameters.primary_conninfo "********" -> null',
    ]);
    // The patch itself carries the real values: it goes over curl's stdin, never printed.
    assert.deepEqual(patch.standby_cluster, { host: 'b', password: 'new-secret' });
  });
});
