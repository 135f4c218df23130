// The quick `pgha status` client (src/cli/quick-status.ts): which command lines it offers to the
// connection keeper, what it sends (the inventory as named, its directory, the environment that
// decides how hosts are reached), what it prints of an answer, and that anything the keeper hands
// back, or no keeper at all, leaves the command to the CLI with nothing printed.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { quickStatus, quickStatusOptions, type QuickIo } from '../../../src/cli/quick-status.js';
import { keeperSocketPath, onMessages, type KeeperRequest, type ServedStatusRequest } from '../../../src/ssh/keeper-protocol.js';
import { pghaVersion } from '../../../src/package-files.js';

const dir = mkdtempSync(join(tmpdir(), 'pgha-unit-quick-'));
chmodSync(dir, 0o700);
after(() => rmSync(dir, { recursive: true, force: true }));

/** A keeper stand-in on the socket a client with `env` finds: answers each status request with `reply`, and records it. */
async function fakeKeeper(env: NodeJS.ProcessEnv, reply: object | null): Promise<{ asked: ServedStatusRequest[]; server: Server }> {
  const path = keeperSocketPath(pghaVersion(), env)!;
  const asked: ServedStatusRequest[] = [];
  const server = createServer((s) => {
    onMessages<KeeperRequest>(s, (req) => {
      if (req.op !== 'status') return;
      asked.push(req.request);
      if (reply === null) s.destroy();
      else s.write(`${JSON.stringify({ id: req.id, status: reply })}\n`);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { asked, server };
}

function io(env: NodeJS.ProcessEnv, cwd = dir): QuickIo & { printed: { out: string; err: string } } {
  const printed = { out: '', err: '' };
  return { env, cwd, color: false, out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), printed };
}

describe('the quick status client', () => {
  test('only a plain status is offered: -i/--inventory FILE and --json, each at most once', () => {
    assert.deepEqual(quickStatusOptions([]), { json: false });
    assert.deepEqual(quickStatusOptions(['-i', 'a.yml', '--json']), { inventory: 'a.yml', json: true });
    assert.deepEqual(quickStatusOptions(['--inventory=b.yml']), { inventory: 'b.yml', json: false });
    assert.deepEqual(quickStatusOptions(['--json', '--inventory', 'c.yml']), { inventory: 'c.yml', json: true });
    for (const other of [['--watch'], ['-v'], ['--verbose'], ['--log', 'x'], ['--help'], ['-i'], ['-i', '-v'], ['--json', '--json'], ['-i', 'a', '-i', 'b'], ['extra'], ['--inventory=']]) {
      assert.equal(quickStatusOptions(other), undefined, other.join(' '));
    }
  });

  test("a keeper's answer is printed as the command's (stderr, then stdout) and its code returned; the request carries what the keeper needs", async () => {
    const env = { PGHA_RUNTIME_DIR: join(dir, 'a'), HOME: '/home/x', SSH_AUTH_SOCK: '/tmp/agent.sock', OTHER: 'not sent' };
    const { asked, server } = await fakeKeeper(env, { out: 'cluster lab: HEALTHY\n', err: 'a note\n', code: 0 });
    try {
      const o = io(env);
      assert.equal(await quickStatus(['node', 'pgha', 'status', '-i', 'inv.yml', '--json'], o), 0);
      assert.deepEqual(o.printed, { out: 'cluster lab: HEALTHY\n', err: 'a note\n' });
      assert.equal(asked.length, 1);
      assert.equal(asked[0].inventory, 'inv.yml');
      assert.equal(asked[0].cwd, dir);
      assert.equal(asked[0].json, true);
      assert.equal(asked[0].env.HOME, '/home/x');
      assert.equal(asked[0].env.SSH_AUTH_SOCK, '/tmp/agent.sock');
      assert.ok(!('OTHER' in asked[0].env), 'only the variables that decide how hosts are reached');
    } finally {
      server.close();
    }
  });

  test('the inventory from $PGHA_INVENTORY or ./inventory.yml is named on stderr first, as the CLI does; none: the CLI says so', async () => {
    const env = { PGHA_RUNTIME_DIR: join(dir, 'b') };
    const { asked, server } = await fakeKeeper(env, { out: 'x\n', err: '', code: 1 });
    try {
      const o = io({ ...env, PGHA_INVENTORY: 'from-env.yml' });
      assert.equal(await quickStatus(['node', 'pgha', 'status'], o), 1);
      assert.equal(o.printed.err, 'pgha: inventory from-env.yml (from $PGHA_INVENTORY)\n');
      const cwd = mkdtempSync(join(dir, 'cwd-'));
      writeFileSync(join(cwd, 'inventory.yml'), 'cluster: {}\n');
      const o2 = io(env, cwd);
      assert.equal(await quickStatus(['node', 'pgha', 'status'], o2), 1);
      assert.equal(o2.printed.err, 'pgha: inventory inventory.yml (from the current directory)\n');
      assert.deepEqual(asked.map((a) => [a.inventory, a.cwd]), [['from-env.yml', dir], ['inventory.yml', cwd]]);
      // No inventory anywhere: not asked, the CLI gives its error.
      assert.equal(await quickStatus(['node', 'pgha', 'status'], io(env, mkdtempSync(join(dir, 'empty-')))), undefined);
      assert.equal(asked.length, 2);
    } finally {
      server.close();
    }
  });

  test('handed back, a keeper that ends without answering, no keeper, a passphrase in the environment, another command: the CLI runs it, nothing printed', async () => {
    const env = { PGHA_RUNTIME_DIR: join(dir, 'c') };
    const back = await fakeKeeper(env, { fallback: '$HOME differs' });
    try {
      const o = io(env);
      assert.equal(await quickStatus(['node', 'pgha', 'status', '-i', 'x.yml'], o), undefined);
      assert.deepEqual(o.printed, { out: '', err: '' });
      assert.equal(back.asked.length, 1);
      const p = io({ ...env, PGHA_SSH_PASSPHRASE: 'secret' });
      assert.equal(await quickStatus(['node', 'pgha', 'status', '-i', 'x.yml'], p), undefined);
      assert.equal(await quickStatus(['node', 'pgha', 'status', '-i', 'x.yml', '--watch'], io(env)), undefined);
      assert.equal(await quickStatus(['node', 'pgha', 'apply', '-i', 'x.yml'], io(env)), undefined);
      assert.equal(back.asked.length, 1, 'none of those reached the keeper');
    } finally {
      back.server.close();
    }
    const envD = { PGHA_RUNTIME_DIR: join(dir, 'd') };
    const gone = await fakeKeeper(envD, null);
    try {
      assert.equal(await quickStatus(['node', 'pgha', 'status', '-i', 'x.yml'], io(envD)), undefined);
      assert.equal(gone.asked.length, 1);
    } finally {
      gone.server.close();
    }
    assert.equal(await quickStatus(['node', 'pgha', 'status', '-i', 'x.yml'], io({ PGHA_RUNTIME_DIR: join(dir, 'none') })), undefined);
  });
});
