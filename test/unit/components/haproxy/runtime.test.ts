// HAProxy's runtime API as pgha's switchover uses it, against recorded connections: what is sent
// to the admin socket to drain, close sessions and restore, and that a refusal is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection, RunOptions, RunResult } from '../../../../src/ssh/index.js';
import { HaproxyRuntimeError, restorePrimary, runtimeCommands, shutdownSessions } from '../../../../src/components/haproxy/runtime.js';

/** A connection that records each command's argv and stdin and answers with `answer`. */
function recorder(name: string, answer: RunResult = { code: 0, stdout: '', stderr: '' }) {
  const sent: { argv: string[]; stdin?: string }[] = [];
  const conn = {
    target: { name },
    run: async (cmd: string[], opts?: RunOptions) => {
      sent.push({ argv: cmd, stdin: opts?.stdin });
      return answer;
    },
  } as unknown as Connection;
  return { conn, sent };
}

test('commands go to the admin socket on stdin, in one line, in order', async () => {
  const h = recorder('hp1');
  await runtimeCommands(h.conn, ['set server primary/pg1 health down', 'set server primary/pg1 state ready']);
  assert.deepEqual(h.sent, [{ argv: ['socat', '-t', '2', 'stdio', 'UNIX-CONNECT:/run/haproxy/admin.sock'], stdin: 'set server primary/pg1 health down; set server primary/pg1 state ready\n' }]);
});

test('an answer (HAProxy answers nothing when these commands succeed) or a failed socat is an error naming the host', async () => {
  await assert.rejects(runtimeCommands(recorder('hp1', { code: 0, stdout: 'No such server.\n\n', stderr: '' }).conn, ['set server primary/x state drain']), (e: Error) => {
    assert.ok(e instanceof HaproxyRuntimeError);
    assert.equal(e.message, 'HAProxy on hp1 answered "No such server." to: set server primary/x state drain');
    return true;
  });
  await assert.rejects(runtimeCommands(recorder('hp2', { code: 127, stdout: '', stderr: 'sudo: socat: command not found' }).conn, ['show info']), /HAProxy runtime API on hp2: sudo: socat: command not found/);
});

test('restore: a demoted server has its health forced down before it is ready again; a server that still leads is only made ready', async () => {
  const a = recorder('hp1');
  const b = recorder('hp2');
  const drained = { server: 'pg1', hosts: [a.conn, b.conn], failed: [] };
  assert.deepEqual(await restorePrimary(drained, false), []);
  assert.equal(a.sent[0].stdin, 'set server primary/pg1 health down; set server primary/pg1 state ready\n');
  assert.equal(b.sent[0].stdin, a.sent[0].stdin);
  assert.deepEqual(await restorePrimary(drained, true), []);
  assert.equal(a.sent[1].stdin, 'set server primary/pg1 state ready\n');
  assert.deepEqual(await shutdownSessions(drained), []);
  assert.equal(a.sent[2].stdin, 'shutdown sessions server primary/pg1\n');
});

test('restore on a host that refuses is reported, the other hosts are still restored', async () => {
  const bad = recorder('hp1', { code: 1, stdout: '', stderr: 'connection refused' });
  const good = recorder('hp2');
  const failed = await restorePrimary({ server: 'pg1', hosts: [bad.conn, good.conn], failed: [] }, false);
  assert.deepEqual(failed, ['HAProxy runtime API on hp1: connection refused']);
  assert.equal(good.sent.length, 1);
});
