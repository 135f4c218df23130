// Failover notifications without a cluster: the notifier (templates/notifications/notify.py.hbs,
// run by python3 as Patroni would run it) returns at once and delivers its event in the
// background, retries a failing receiver a bounded number of times, and never waits on a hanging
// one; the rendered files (Patroni's callbacks, the settings with the secret headers) and the
// inventory's notifications checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { renderHost } from '../../../../src/components/index.js';
import { NOTIFY_CONFIG, NOTIFY_SCRIPT, webhookOrigin } from '../../../../src/components/notifications/index.js';
import { secretValues, type Inventory } from '../../../../src/inventory/index.js';
import { loadWith, TEST_SECRETS } from '../inventory-with.js';

const SECRETS = readFileSync('test/fixtures/secrets/test-secrets.yaml', 'utf8');
const HOOKS = (url: string) => `notifications:\n  webhooks:\n    - name: oncall\n      url: ${url}\n      headers: {X-Team: dba}\n      timeout: 1\n  retries: 2\n`;

const load = (extra: string, secrets = `${TEST_SECRETS}webhook_headers:\n  oncall: {Authorization: Bearer s3cr3t-t0ken}\n`) => loadWith(extra, secrets);

/** The notifier and its settings for pg1, written where python3 can run them. */
function installNotifier(inv: Inventory, dataDirectory?: string): { script: string; env: NodeJS.ProcessEnv } {
  const files = renderHost(inv, 'pg1', { dcs: 'etcd' });
  const dir = mkdtempSync(join(tmpdir(), 'pgha-notifier-'));
  const script = join(dir, 'notify');
  writeFileSync(script, files.find((f) => f.path === NOTIFY_SCRIPT)!.content, { mode: 0o755 });
  // No PostgreSQL here: the timeline is null (psql fails fast against a port nobody listens on).
  const cfg = JSON.parse(files.find((f) => f.path === NOTIFY_CONFIG)!.content);
  writeFileSync(join(dir, 'notify.json'), JSON.stringify({ ...cfg, postgres_port: 1, ...(dataDirectory ? { data_dir: dataDirectory } : {}) }));
  return { script, env: { ...process.env, PGHA_NOTIFY_CONFIG: join(dir, 'notify.json'), PGHOST: '127.0.0.1' } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('no notifications by default: no callback, no notifier', async () => {
  const { inv } = await load('', SECRETS);
  const files = renderHost(inv!, 'pg1', { dcs: 'etcd' });
  assert.ok(!files.some((f) => f.component === 'notifications'));
  assert.ok(!files.find((f) => f.path === '/etc/patroni/config.yml')!.content.includes('callbacks'));
});

test("Patroni's on_role_change runs the notifier; its settings hold the secret header and are postgres-only", async () => {
  const { inv, lines } = await load(HOOKS('https://hooks.example.com/T000/B000/xyzzy'));
  assert.deepEqual(lines, []);
  const files = renderHost(inv!, 'pg1', { dcs: 'etcd' });
  const patroni = parse(files.find((f) => f.path === '/etc/patroni/config.yml')!.content);
  assert.deepEqual(patroni.postgresql.callbacks, { on_role_change: NOTIFY_SCRIPT });
  const cfg = files.find((f) => f.path === NOTIFY_CONFIG)!;
  assert.deepEqual([cfg.owner, cfg.mode, cfg.secret], ['postgres', 0o600, true]);
  assert.deepEqual(JSON.parse(cfg.content).webhooks, [{ name: 'oncall', url: 'https://hooks.example.com/T000/B000/xyzzy', timeout: 1, headers: { 'X-Team': 'dba', Authorization: 'Bearer s3cr3t-t0ken' } }]);
  assert.ok(secretValues(inv!.secrets).includes('Bearer s3cr3t-t0ken'), 'the masker knows the header');
  assert.equal(webhookOrigin('https://hooks.example.com/T000/B000/xyzzy'), 'https://hooks.example.com');
  // The backup repository host has no notifier.
  assert.ok(!renderHost(inv!, 'bk', { dcs: 'etcd' }).some((f) => f.component === 'notifications'));
});

test('bad webhooks: located', async () => {
  const { lines } = await load(
    'notifications:\n  webhooks:\n    - name: a\n      url: ftp://x.example/h\n    - name: a\n      url: https://user:pw@x.example/h\n      headers: {"bad header": x}\n',
  );
  assert.deepEqual(lines, [
    'inv.yml:23:12: notifications.webhooks[0].url: got "ftp://x.example/h", scheme ftp: is not http or https, expected an http:// or https:// URL',
    'inv.yml:25:12: notifications.webhooks[1].url: got "https://user:pw@x.example/h", has credentials in it, expected an http:// or https:// URL without user:password@ (put an Authorization header in the secrets file: webhook_headers.NAME)',
    'inv.yml:26:17: notifications.webhooks[1].headers["bad header"]: got "bad header", expected an HTTP header name (letters, digits, -)',
  ]);
  const dup = await load('notifications:\n  webhooks:\n    - {name: a, url: "http://x.example/"}\n    - {name: a, url: "http://y.example/"}\n', SECRETS);
  assert.deepEqual(dup.lines, ['inv.yml:23:14: notifications.webhooks[1].name: webhook a is also webhooks[0], expected each name once']);
  const stray = await load('', `${SECRETS}webhook_headers:\n  nosuch: {Authorization: x}\n`);
  assert.equal(stray.lines.length, 1);
  assert.match(stray.lines[0], /^inv\.yml:19:10: secrets: the secrets file has webhook_headers\.nosuch, but notifications\.webhooks has no webhook named nosuch, expected one of: \(none\)$/);
});

test('the notifier returns at once and delivers one event in the background, with the headers', async () => {
  const got: { body: Record<string, unknown>; headers: IncomingHttpHeaders; at: number }[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      got.push({ body: JSON.parse(data), headers: req.headers, at: Date.now() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const { inv } = await load(HOOKS(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`));
    const n = installNotifier(inv!);
    const t0 = Date.now();
    const r = spawnSync('python3', [n.script, 'on_role_change', 'master', 't'], { env: n.env, encoding: 'utf8', timeout: 10_000 });
    const took = Date.now() - t0;
    assert.equal(r.status, 0, r.stderr);
    // Python's start and imports alone take up to 0.8 s on a slow 2-core machine; the delivery is the detached child's.
    assert.ok(took < 3000, `the callback took ${took} ms`);
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(100);
    await sleep(500);
    assert.equal(got.length, 1);
    const { body, headers } = got[0];
    assert.deepEqual(
      { ...body, id: typeof body.id, time: typeof body.time },
      { event: 'role_change', id: 'string', cluster: 't', member: 'pg1', old_role: 'replica', new_role: 'leader', patroni_action: 'on_role_change', patroni_role: 'master', timeline: null, time: 'string' },
    );
    assert.ok(Math.abs(Date.parse(String(body.time)) - t0) < 2000);
    assert.equal(headers.authorization, 'Bearer s3cr3t-t0ken');
    assert.equal(headers['x-team'], 'dba');
    assert.equal(headers['content-type'], 'application/json');
  } finally {
    server.close();
  }
});

test("a promotion that SQL does not show within 3 s (a loaded host): the event names the newest timeline of the member's pg_wal", async () => {
  const got: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      got.push(JSON.parse(data));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const { inv } = await load(HOOKS(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`));
    const data = mkdtempSync(join(tmpdir(), 'pgha-notifier-data-'));
    mkdirSync(join(data, 'pg_wal'));
    // The promotion writes its new timeline's history file first; older ones and segments beside it.
    for (const f of ['00000002.history', '0000000E.history', '0000000F.history', '0000000E0000000000000041', '0000000F0000000000000041.partial']) writeFileSync(join(data, 'pg_wal', f), '');
    const n = installNotifier(inv!, data);
    assert.equal(spawnSync('python3', [n.script, 'on_role_change', 'master', 't'], { env: n.env, encoding: 'utf8', timeout: 10_000 }).status, 0);
    for (let i = 0; i < 80 && got.length === 0; i++) await sleep(100);
    assert.equal(got.length, 1);
    assert.equal(got[0].new_role, 'leader');
    assert.equal(got[0].timeline, 15);
    // A demotion is not guessed from files: without an answer from PostgreSQL it stays null.
    assert.equal(spawnSync('python3', [n.script, 'on_role_change', 'replica', 't'], { env: n.env, encoding: 'utf8', timeout: 10_000 }).status, 0);
    for (let i = 0; i < 80 && got.length === 1; i++) await sleep(100);
    assert.equal(got.length, 2);
    assert.equal(got[1].new_role, 'replica');
    assert.equal(got[1].timeline, null);
  } finally {
    server.close();
  }
});

test('a hanging receiver: the callback still returns at once; the test mode gives up after the timeout and says so', async () => {
  const sockets: Socket[] = [];
  const hang = createTcpServer((s) => void sockets.push(s));
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
  try {
    const { inv } = await load(HOOKS(`http://127.0.0.1:${(hang.address() as AddressInfo).port}/hook`));
    const n = installNotifier(inv!);
    const t0 = Date.now();
    const r = spawnSync('python3', [n.script, 'on_role_change', 'replica', 't'], { env: n.env, encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    // Delivering in the foreground would take 3 tries of 1 s and 3 s of backoff.
    assert.ok(Date.now() - t0 < 3000, `the callback took ${Date.now() - t0} ms`);
    // Test mode: one try, bounded by the 1 s timeout; exit 1 and the reason.
    const t1 = Date.now();
    const test = spawnSync('python3', [n.script, 'test'], { env: n.env, encoding: 'utf8', timeout: 20_000 });
    assert.equal(test.status, 1, test.stderr);
    assert.match(test.stdout, /^oncall: not delivered after 1 try \([\d.]+s\): .*timed out/);
    assert.ok(Date.now() - t1 < 5000);
  } finally {
    sockets.forEach((s) => s.destroy());
    hang.close();
  }
});

test('a failing receiver is tried again, a bounded number of times', async () => {
  let tries = 0;
  const server = createServer((_req, res) => {
    tries++;
    res.writeHead(503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const { inv } = await load(HOOKS(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`));
    const n = installNotifier(inv!);
    spawnSync('python3', [n.script, 'on_role_change', 'master', 't'], { env: n.env, encoding: 'utf8', timeout: 10_000 });
    // retries: 2 -> 3 tries, 1 s and 2 s apart (after up to 3 s asking for the timeline: no PostgreSQL here).
    await sleep(8000);
    assert.equal(tries, 3);
    await sleep(2500);
    assert.equal(tries, 3, 'no fourth try');
  } finally {
    server.close();
  }
});
