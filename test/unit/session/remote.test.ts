// httpEachCommand: several URLs asked at once by one curl (status's questions to a host), each answer
// (status, body exactly as sent) or that URL's own error, in the order asked; real curl, a
// real local HTTP server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LocalConnection } from '../../../src/ssh/local.js';
import { httpEachCommand, RemoteError } from '../../../src/session/remote.js';

/** The command run on this machine as status runs it on a host, and its answer read. */
async function httpGetEach(conn: LocalConnection, urls: string[], opts: { timeoutSec?: number } = {}) {
  const q = httpEachCommand(urls, opts);
  return q.read(conn.target.name, await conn.run(q.cmd, { sudo: false, check: false, timeoutMs: 20_000 }));
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('one curl for several URLs: each status and body as sent, a refused URL its own error, order kept', async () => {
  const server = createServer((req, res) => {
    if (req.url === '/cluster') res.end('{"members": []}\n\n@@not a marker@@\n');
    else if (req.url === '/patroni') {
      res.statusCode = 503;
      res.end('{"state": "stopped"}');
    } else res.end('# pxname,svname\nprimary,node1');
  });
  const base = await listen(server);
  const closed = createServer();
  const refused = await listen(closed);
  await new Promise<void>((res) => closed.close(() => res()));
  let answers;
  try {
    answers = await httpGetEach(new LocalConnection(), [`${base}/;csv`, `${refused}/cluster`, `${base}/cluster`, `${base}/patroni`]);
  } finally {
    server.close();
  }
  assert.equal(answers.length, 4);
  assert.deepEqual(answers[0], { status: 200, body: '# pxname,svname\nprimary,node1' });
  assert.ok(answers[1] instanceof RemoteError);
  assert.match((answers[1] as RemoteError).message, new RegExp(`^GET ${refused}/cluster from \\S+: curl: \\(7\\)`));
  assert.deepEqual(answers[2], { status: 200, body: '{"members": []}\n\n@@not a marker@@\n' });
  assert.deepEqual(answers[3], { status: 503, body: '{"state": "stopped"}' });
});

test('URLs curl cannot fetch (refused, malformed) are each an error of their own', async () => {
  const answers = await httpGetEach(new LocalConnection(), ['http://127.0.0.1:1/a', 'not a url at all://'], { timeoutSec: 1 });
  assert.equal(answers.length, 2);
  for (const a of answers) assert.ok(a instanceof RemoteError, String(a));
});

test('the URLs are asked at once, not one after another (each answer here takes 1 s)', async () => {
  const server = createServer((req, res) => setTimeout(() => res.end(`answer of ${req.url}`), 1000));
  const base = await listen(server);
  const started = Date.now();
  let answers;
  try {
    answers = await httpGetEach(new LocalConnection(), [`${base}/a`, `${base}/b`, `${base}/c`]);
  } finally {
    server.close();
  }
  const took = Date.now() - started;
  assert.deepEqual(answers, ['/a', '/b', '/c'].map((u) => ({ status: 200, body: `answer of ${u}` })));
  // One after another would take 3 s.
  assert.ok(took < 2500, `took ${took} ms`);
});
