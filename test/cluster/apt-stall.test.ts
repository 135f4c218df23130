// A stalled package proxy during apply: a TCP proxy on the lab bridge's host address accepts the
// first connection and never answers it (later ones are passed to the lab's real apt proxy).
// The inventory's apt_proxy points there and one host (node2) misses a package pgha installs
// (socat), so apply runs apt-get update and the install there. The stall must be reported on
// screen with the host and the address it waits on, ended and tried again within ~30 s, and
// apply must succeed in bounded time; a writer through HAProxy runs throughout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha, PGHA_FROM_SOURCE, REPO } from '../helpers.js';
import { Checker, problems } from '../faults/checker.js';
import { faultContext, sh } from '../faults/suite.js';

const log = (s: string) => console.log(`# ${s.replace(/\n/g, '\n# ')}`);
const HOST = 'node2';

/** Accepts connections; the first `stall` are held open and never answered, the rest are piped to `upstream`. */
function stallingProxy(listen: string, upstream: { host: string; port: number }, stall: number) {
  const held: net.Socket[] = [];
  const stalledAt: number[] = [];
  let forwarded = 0;
  const server = net.createServer((client) => {
    client.on('error', () => {});
    if (stalledAt.length < stall) {
      stalledAt.push(Date.now());
      held.push(client);
      return;
    }
    forwarded += 1;
    const up = net.connect(upstream.port, upstream.host);
    up.on('error', () => client.destroy());
    client.pipe(up).pipe(client);
    client.on('close', () => up.destroy());
  });
  const ready = new Promise<number>((resolve) => server.listen(0, listen, () => resolve((server.address() as net.AddressInfo).port)));
  return {
    ready,
    stalledAt,
    forwarded: () => forwarded,
    close: () => {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

/** `pgha apply`, each output line with the time it arrived (ms). */
function applyTimed(inventory: string): Promise<{ code: number | null; lines: { at: number; text: string }[]; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [...PGHA_FROM_SOURCE, 'apply', '-i', inventory], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { PGHA_LOG_DIR: `${REPO}test-output/logs`, ...process.env } });
  const lines: { at: number; text: string }[] = [];
  const partial = { out: '', err: '' };
  const take = (key: 'out' | 'err') => (d: Buffer) => {
    const parts = (partial[key] + d.toString()).split('\n');
    partial[key] = parts.pop()!;
    for (const text of parts) lines.push({ at: Date.now(), text });
  };
  child.stdout.on('data', take('out'));
  child.stderr.on('data', take('err'));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      for (const key of ['out', 'err'] as const) if (partial[key]) lines.push({ at: Date.now(), text: partial[key] });
      resolve({ code, lines, ms: Date.now() - started });
    }),
  );
}

describe('a stalled package proxy during apply', { timeout: 20 * 60_000 }, () => {
  let inventory: string;
  before(async () => {
    inventory = await ensureCluster(log);
  });

  after(async () => {
    // Back to the lab's own proxy (and socat everywhere), whatever happened.
    const r = await pgha(['apply', '-i', inventory]);
    if (r.code !== 0) log(`restoring apply failed:\n${r.stdout}${r.stderr}`);
  });

  test('apt-get update that stalls on one host: reported with host and address, ended and tried again, apply succeeds', async () => {
    const cfg = lab.labConfig();
    const upstream = new URL(cfg.proxyUrl);
    const proxy = stallingProxy(cfg.hostAddress, { host: upstream.hostname, port: Number(upstream.port) }, 1);
    const port = await proxy.ready;
    const doc = parseDocument(readFileSync(inventory, 'utf8'));
    doc.setIn(['packages', 'apt_proxy'], `http://${cfg.hostAddress}:${port}`);
    const stalling = join(mkdtempSync(join(tmpdir(), 'pgha-apt-stall-')), 'inventory.yml');
    writeFileSync(stalling, doc.toString());
    await sh(HOST, 'sudo apt-get remove -y -q socat');
    const ctx = await faultContext(inventory, log);
    const checker = await Checker.start({ writeEndpoints: ctx.haproxy, members: ctx.members, cred: ctx.cred });
    let r: Awaited<ReturnType<typeof applyTimed>>;
    try {
      assert.ok(await checker.waitForAcks(0, 30, 60_000), 'writes through HAProxy before apply');
      r = await applyTimed(stalling);
    } finally {
      proxy.close();
    }
    const report = await checker.finish();
    const out = r.lines.map((l) => l.text).join('\n');
    assert.equal(r.code, 0, out);
    assert.equal(proxy.stalledAt.length, 1, 'the proxy held one connection');
    assert.ok(proxy.forwarded() > 0, 'later connections went through');
    const at = (re: RegExp) => r.lines.find((l) => re.test(l.text));
    const where = `(http://)?${cfg.hostAddress.replace(/\./g, '\\.')}:${port}`;
    const waiting = at(new RegExp(`^${HOST}: apt-get update waiting \\d+s on ${where} \\(no data\\)$`));
    const retried = at(new RegExp(`^${HOST}: apt-get update stalled \\(no data for 20s from ${where}\\): trying again \\(try 2 of 3\\)$`));
    assert.ok(waiting, `a progress line names the host and the address it waits on:\n${out}`);
    assert.ok(retried, `the stall is ended and tried again:\n${out}`);
    const reportS = (waiting.at - proxy.stalledAt[0]) / 1000;
    const retryS = (retried.at - proxy.stalledAt[0]) / 1000;
    log(`stall reported after ${reportS.toFixed(1)} s, ended and retried after ${retryS.toFixed(1)} s; apply took ${(r.ms / 1000).toFixed(1)} s`);
    assert.ok(reportS <= 20, `reported after ${reportS} s`);
    assert.ok(retryS <= 35, `retried after ${retryS} s`);
    assert.ok(r.ms < 120_000, `apply took ${r.ms / 1000} s`);
    assert.equal(await sh(HOST, "dpkg-query -W -f '${Status}' socat"), 'install ok installed');
    assert.deepEqual(problems(report), []);
    assert.equal(report.readOnlyErrors, 0);
    log(`writer: ${report.acknowledged} acknowledged, ${report.lost.length} lost, longest gap ${report.unavailabilityS} s`);
  });
});
