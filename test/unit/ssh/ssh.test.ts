// Pure transport logic: known_hosts parsing and matching, fingerprints, quoting, masking.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { appendKnownHost, fingerprint, hostFieldMatches, keyTypeOf, parseKnownHosts, preferredHostKeyAlgorithms, verifyHostKey } from '../../../src/ssh/known-hosts.js';
import { LocalConnection, Masker, ShellConnection, SshConnection, commandText, localTarget, shellQuote } from '../../../src/ssh/index.js';
import type { RawResult } from '../../../src/ssh/connection.js';
import { HostError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-ssh-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function newKey(name: string): { blob: Buffer; line: string; pub: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
  const line = readFileSync(`${path}.pub`, 'utf8');
  return { blob: Buffer.from(line.split(' ')[1], 'base64'), line, pub: `${path}.pub` };
}

const a = newKey('a');
const b = newKey('b');
const b64 = (k: Buffer) => k.toString('base64');

describe('fingerprint', () => {
  test('matches ssh-keygen -lf (SHA256, base64 without padding)', () => {
    const expected = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', a.pub], { encoding: 'utf8' }).split(' ')[1];
    assert.equal(fingerprint(a.blob), expected);
    assert.match(fingerprint(a.blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(keyTypeOf(a.blob), 'ssh-ed25519');
  });
});

describe('known_hosts', () => {
  test('plain, [host]:port, lists, wildcards and negation', () => {
    assert.ok(hostFieldMatches('db1,10.0.0.1', '10.0.0.1', 22));
    assert.ok(!hostFieldMatches('10.0.0.1', '10.0.0.1', 2222));
    assert.ok(hostFieldMatches('[10.0.0.1]:2222', '10.0.0.1', 2222));
    assert.ok(!hostFieldMatches('[10.0.0.1]:2222', '10.0.0.1', 22));
    assert.ok(hostFieldMatches('DB1.Example', 'db1.example', 22));
    assert.ok(hostFieldMatches('*.example', 'db1.example', 22));
    assert.ok(!hostFieldMatches('*.example,!db1.example', 'db1.example', 22));
    assert.ok(!hostFieldMatches('db1', 'db10', 22));
  });

  test('hashed entries, including the ones ssh-keygen -H writes', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[10.0.0.1]:2222').digest('base64');
    assert.ok(hostFieldMatches(`|1|${salt.toString('base64')}|${hash}`, '10.0.0.1', 2222));
    assert.ok(!hostFieldMatches(`|1|${salt.toString('base64')}|${hash}`, '10.0.0.2', 2222));
    const file = join(dir, 'kh');
    appendKnownHost(file, '10.0.0.9', 2200, a.blob);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file]);
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    assert.equal(entries.length, 1);
    assert.match(entries[0].hosts, /^\|1\|/);
    assert.equal(verifyHostKey(entries, '10.0.0.9', 2200, a.blob).status, 'match');
  });

  test('verdicts: match, unknown, changed (with line), revoked; markers and junk do not crash', () => {
    const text = [
      '# comment',
      '',
      'garbage',
      `@cert-authority *.example ${a.line.split(' ').slice(0, 2).join(' ')}`,
      `db1 ssh-ed25519 ${b64(a.blob)}`,
      `@revoked db9 ssh-ed25519 ${b64(b.blob)}`,
      '@unknown-marker x y z',
    ].join('\n');
    const entries = parseKnownHosts(text);
    assert.equal(entries.length, 3);
    assert.equal(verifyHostKey(entries, 'db1', 22, a.blob).status, 'match');
    assert.equal(verifyHostKey(entries, 'db2', 22, a.blob).status, 'unknown');
    const changed = verifyHostKey(entries, 'db1', 22, b.blob);
    assert.equal(changed.status, 'changed');
    assert.equal(changed.status === 'changed' && changed.entries[0].line, 5);
    assert.equal(verifyHostKey(entries, 'db9', 22, b.blob).status, 'revoked');
    assert.deepEqual(preferredHostKeyAlgorithms(entries, 'db1', 22), ['ssh-ed25519']);
    assert.equal(preferredHostKeyAlgorithms(entries, 'db2', 22), undefined);
  });

  test('accept-new appends a line ssh reads, also to a file without a final newline', () => {
    const file = join(dir, 'sub', 'known_hosts');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(file, `db1 ssh-ed25519 ${b64(a.blob)}`);
    appendKnownHost(file, '10.0.0.1', 2222, b.blob);
    const text = readFileSync(file, 'utf8');
    assert.equal(text, `db1 ssh-ed25519 ${b64(a.blob)}\n[10.0.0.1]:2222 ssh-ed25519 ${b64(b.blob)}\n`);
    // ssh-keygen -F finds both
    assert.match(execFileSync('ssh-keygen', ['-F', '[10.0.0.1]:2222', '-f', file], { encoding: 'utf8' }), /ssh-ed25519/);
  });
});

describe('shell quoting', () => {
  test('words survive the shell unchanged', async () => {
    const words = ['plain', '', "it's", 'a b', '$HOME', '`id`', '"q"', 'x;y&&z|w', '*', '\\n', 'ünï', '-n'];
    assert.equal(shellQuote('plain'), 'plain');
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    const conn = new LocalConnection();
    const r = await conn.run(['printf', '%s\\n', ...words]);
    assert.equal(r.stdout, words.map((w) => `${w}\n`).join(''));
    assert.equal(commandText('echo $HOME'), 'echo $HOME');
    assert.throws(() => commandText([]));
  });
});

describe('masking', () => {
  test('secrets are replaced, longest first, quoted forms too; short strings ignored', () => {
    const m = new Masker(['hunter22', 'hunter22-long', "pa'ss", 'ab']);
    assert.equal(m.mask('pw=hunter22-long x=hunter22'), 'pw=******** x=********');
    assert.equal(m.mask(commandText(['psql', "pa'ss"])), 'psql ********');
    assert.equal(m.mask(`sh -c 'echo pa'\\''ss'`), `sh -c 'echo ********'`);
    assert.equal(m.mask('ab cd'), 'ab cd');
  });
});

describe('sudo hint', () => {
  // A host whose sudo wants a password: every escalated command fails the way sudo -n does.
  class PasswordSudo extends ShellConnection {
    protected async exec(): Promise<RawResult> {
      return { code: 1, signal: null, stdout: '', stderr: 'sudo: a password is required\n' };
    }
    async close(): Promise<void> {}
  }

  test('the command the operator is told to run as root writes exactly one sudoers line, whatever the user name', async () => {
    const work = mkdtempSync(join(dir, 'sudoers-'));
    const marker = join(work, 'ran');
    // validate allows no such name; the hint must hold even so.
    const user = `x' ALL=(ALL) ALL; touch ${marker}; echo '`;
    const conn = new PasswordSudo(localTarget({ name: 'db1', user, sudo: true }));
    const err = await conn.run(['true']).then(
      () => assert.fail('no error'),
      (e: Error) => e,
    );
    const m = /run as root: (.*) \(or connect as root\)\.$/.exec(err.message);
    assert.ok(m, err.message);
    const sudoers = join(work, 'pgha');
    execFileSync('sh', ['-c', m[1].replace('/etc/sudoers.d/pgha', sudoers).replace(/ && chmod 0440 .*$/, '')]);
    assert.equal(readFileSync(sudoers, 'utf8'), `${user} ALL=(ALL:ALL) NOPASSWD: ALL\n`);
    assert.equal(existsSync(marker), false, 'nothing else ran');
    // An ordinary name reads as before.
    const plain = await new PasswordSudo(localTarget({ name: 'db1', user: 'admin', sudo: true })).run(['true']).catch((e: Error) => e.message);
    assert.match(String(plain), /run as root: echo 'admin ALL=\(ALL:ALL\) NOPASSWD: ALL' > \/etc\/sudoers\.d\/pgha && chmod 0440/);
  });
});

describe('known_hosts path', () => {
  test('a directory is a clear host error at connect time, before any connection', async () => {
    const knownHosts = mkdtempSync(join(dir, 'kh-dir-'));
    const target = localTarget({ name: 'db1', address: '192.0.2.1', port: 22, privateKeyPath: join(dir, 'a'), knownHostsPath: knownHosts });
    await assert.rejects(SshConnection.connect(target), (err: Error) => {
      assert.ok(err instanceof HostError, String(err));
      assert.equal(err.message, `db1: cannot read the known_hosts file ${knownHosts}: EISDIR`);
      return true;
    });
  });
});
