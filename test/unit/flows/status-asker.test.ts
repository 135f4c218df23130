// status's kept asker (src/flows/status/asker.ts), run here with python3 through the kept psql's
// framing as the keeper runs it: its TLS files' identity is the one `stat` prints (so an unchanged
// host only says "same"), its data disk the one `stat -f` prints, and etcd's members are asked as
// curl asked them (a new connection each time, both questions on it), in the output format
// etcdStateCommand's parser reads (failures as curl words them).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ASKER, readAskerAnswer, type AskerQuestion } from '../../../src/flows/status/asker.js';
import { KeptPsql } from '../../../src/ssh/kept-psql.js';
import { childPipe } from '../ssh/child-pipe.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-asker-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function asker(endpoints: string[] = []): KeptPsql {
  return new KeptPsql(childPipe('python3', ['-c', ASKER, '', '', '', ...endpoints]));
}
const ask = async (a: KeptPsql, q: AskerQuestion) => {
  const r = await a.query(JSON.stringify(q), 10_000);
  assert.equal(r.code, 0, r.stderr);
  return readAskerAnswer(r.stdout);
};

describe("status's kept asker", () => {
  test('TLS files: "same" exactly when stat would print the identity status remembers; a changed or missing file is left to the shell', async () => {
    const files = ['a.key', 'a.crt', 'ca.crt'].map((f) => join(dir, f));
    for (const f of files) writeFileSync(f, `${f}\n`, { mode: 0o640 });
    const stat = () => execFileSync('stat', ['-c', '%n %d:%i %z %s %U %G %a', '--', ...files], { encoding: 'utf8' }).replace(/\n$/, '');
    const a = asker();
    try {
      const known = stat();
      assert.deepEqual((await ask(a, { tls: { files, known } })).tls, { code: 0, stdout: '@@same\n', stderr: '' });
      appendFileSync(files[1], 'renewed\n');
      assert.equal((await ask(a, { tls: { files, known } })).tls, undefined, 'changed: the batch reads it');
      assert.ok((await ask(a, { tls: { files, known: stat() } })).tls, 'the new identity is the same again');
      assert.equal((await ask(a, { tls: { files: [...files, join(dir, 'gone.crt')], known: stat() } })).tls, undefined, 'a missing file');
    } finally {
      a.close();
    }
  });

  test("data disk: dataDiskArgv's pick (the inventory's major, else the highest one there, else the home) and stat -f's numbers", async () => {
    const home = join(dir, 'home');
    for (const d of ['9/main', '15/main', 'x/main']) mkdirSync(join(home, d), { recursive: true });
    const statf = (d: string) => execFileSync('stat', ['-f', '-c', '%S %b %a', '--', d], { encoding: 'utf8' }).trim();
    const a = asker();
    try {
      const sizes = (out: string | undefined) => out?.split(' ').slice(0, 2).join(' ');
      // The free count moves with the machine: block size and count must match, free within a little.
      const check = async (q: AskerQuestion['disk'], d: string) => {
        const got = (await ask(a, { disk: q })).disk?.stdout;
        assert.equal(sizes(got), sizes(statf(d)));
        assert.ok(Math.abs(Number(got!.split(' ')[2]) - Number(statf(d).split(' ')[2])) < 4096, `${got} vs ${statf(d)}`);
      };
      await check({ home }, join(home, '15/main'));
      await check({ home, major: 9 }, join(home, '9/main'));
      await check({ home, major: 42 }, home);
      assert.equal((await ask(a, { disk: { home: join(dir, 'nowhere') } })).disk, undefined, 'a failed statfs is left to the shell');
    } finally {
      a.close();
    }
  });

  test("etcd: every member's /health and status on one new connection each time, in the format readEtcdState reads; a member that refuses, as curl says it", async () => {
    let connections = 0;
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/health' ? '{"health":"true"}' : '{"header":{"member_id":"7"},"leader":"7"}');
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const port = (server.address() as AddressInfo).port;
    const a = asker([`http://127.0.0.1:${port}`, `http://127.0.0.1:${deadPort}`]);
    try {
      for (let i = 0; i < 2; i++) {
        const out = (await ask(a, { etcd: true })).etcd?.stdout ?? '';
        const lines = out.split('\n').filter((l) => l.startsWith('@@etcd'));
        assert.deepEqual(lines.slice(0, 2), ['@@etcd 0 200 0 ', '@@etcd 1 200 0 ']);
        assert.match(out, /^\{"health":"true"\}\n@@etcd 0/);
        assert.match(lines[2], new RegExp(`^@@etcd 2 000 7 Failed to connect to 127\\.0\\.0\\.1 port ${deadPort}: Connection refused$`));
        assert.equal(lines[3].slice(0, 14), '@@etcd 3 000 7');
      }
      assert.equal(connections, 2, 'one connection an ask, both questions on it (nothing kept: a changed certificate shows at once)');
      assert.equal((await ask(a, {})).etcd, undefined, 'not asked, not answered');
    } finally {
      a.close();
      server.close();
    }
  });

  test('an answer that is not the asker\'s leaves every part to the shell', () => {
    assert.deepEqual(readAskerAnswer('python3: not found\n'), {});
    assert.deepEqual(readAskerAnswer('{"tls": false, "disk_error": "x"}\n'), {});
  });
});
