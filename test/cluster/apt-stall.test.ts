// A stalled package proxy during apply: a TCP proxy on the lab bridge's host address accepts the
// first connection and never answers it (later ones are passed to the lab's real apt proxy).
// The inventory's apt_proxy points there and one host (node2) misses a package pgha installs
// (socat), so apply runs apt-get update and the install there. The stall must be reported on
// screen with the host and the address it waits on, ended and tried again within ~30 s, and
// apply must succeed in bounded time; a writer through HAProxy runs throughout. Then, with the
// same stall holding apt on node2, the SSH session serving pgha there is killed (its sshd
// process, by PID): apply fails that host with the reason, and the next apply converges. Last,
// the same host reboots (a power cycle) in the middle of that stage: the same outcome.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import * as lab from '../lab/lab.js';
import { ensureCluster, pgha, PGHA_CLI, REPO } from '../helpers.js';
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
function applyTimed(inventory: string, onLine: (text: string) => void = () => {}): Promise<{ code: number | null; lines: { at: number; text: string }[]; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [...PGHA_CLI, 'apply', '-i', inventory], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { PGHA_LOG_DIR: `${REPO}test-output/logs`, ...process.env } });
  const lines: { at: number; text: string }[] = [];
  const partial = { out: '', err: '' };
  const take = (key: 'out' | 'err') => (d: Buffer) => {
    const parts = (partial[key] + d.toString()).split('\n');
    partial[key] = parts.pop()!;
    for (const text of parts) {
      lines.push({ at: Date.now(), text });
      onLine(text);
    }
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

/** A copy of the inventory with another apt_proxy. */
function withAptProxy(inventory: string, url: string): string {
  const doc = parseDocument(readFileSync(inventory, 'utf8'));
  doc.setIn(['packages', 'apt_proxy'], url);
  const file = join(mkdtempSync(join(tmpdir(), 'pgha-apt-stall-')), 'inventory.yml');
  writeFileSync(file, doc.toString());
  return file;
}

// On the host: from the apt watchdog pgha runs, up the process tree to the sshd session process
// serving that SSH connection, killed (SIGKILL) by its PID, which is printed.
const KILL_PGHA_SESSION = [
  "p=$(pgrep -o -f '/run/pgha-ap[t]') || exit 3",
  'while [ "$p" -gt 1 ]; do',
  '  case "$(tr "\\0" " " < /proc/$p/cmdline)" in "sshd: admin@"*) sudo kill -9 "$p" && echo "$p"; exit 0 ;; esac',
  '  p=$(awk \'{ print $4 }\' /proc/$p/stat)',
  'done',
  'exit 4',
].join('\n');

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
    const stalling = withAptProxy(inventory, `http://${cfg.hostAddress}:${port}`);
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

  /**
   * apply with HOST's apt-get update held by the stalling proxy; `fault` runs once apply reports the
   * wait (a step that is safe to repeat). That host must fail with the reason, the next apply
   * (the lab's own proxy) converge and verify, and the writer through HAProxy lose nothing.
   */
  async function failsMidStageThenConverges(fault: () => Promise<string>, othersUntouched: boolean): Promise<void> {
    const cfg = lab.labConfig();
    const upstream = new URL(cfg.proxyUrl);
    const proxy = stallingProxy(cfg.hostAddress, { host: upstream.hostname, port: Number(upstream.port) }, 1);
    const stalling = withAptProxy(inventory, `http://${cfg.hostAddress}:${await proxy.ready}`);
    await sh(HOST, 'sudo apt-get remove -y -q socat');
    const ctx = await faultContext(inventory, log);
    const checker = await Checker.start({ writeEndpoints: ctx.haproxy, members: ctx.members, cred: ctx.cred });
    let faulted: Promise<string> | undefined;
    let r: Awaited<ReturnType<typeof applyTimed>>;
    try {
      assert.ok(await checker.waitForAcks(0, 30, 60_000), 'writes through HAProxy before apply');
      r = await applyTimed(stalling, (text) => {
        if (!faulted && new RegExp(`^${HOST}: apt-get update waiting`).test(text)) faulted = fault();
      });
    } finally {
      proxy.close();
    }
    const out = r.lines.map((l) => l.text).join('\n');
    assert.ok(faulted, `apply never reported the wait:\n${out}`);
    log(await faulted);
    assert.equal(r.code, 1, out);
    assert.match(out, new RegExp(`${HOST}.*the SSH connection was lost while a command ran \\(.+\\): its outcome on the host is unknown; run pgha apply again`), out);
    assert.match(out, new RegExp(`^${HOST} +ok=\\d+ +changed=\\d+ +failed=1$`, 'm'), out);
    if (othersUntouched) for (const other of ['node1', 'node3', 'node4']) assert.match(out, new RegExp(`^${other} +ok=\\d+ +changed=\\d+ +failed=0$`, 'm'), out);
    const again = await pgha(['apply', '-i', inventory]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /^VERIFY$/m);
    assert.equal(await sh(HOST, "dpkg-query -W -f '${Status}' socat"), 'install ok installed');
    const report = await checker.finish();
    assert.deepEqual(problems(report), []);
    if (othersUntouched) assert.equal(report.readOnlyErrors, 0);
    log(`failed apply ${(r.ms / 1000).toFixed(1)} s, next apply ${(again.ms / 1000).toFixed(1)} s; writer: ${report.acknowledged} acknowledged, ${report.lost.length} lost, longest gap ${report.unavailabilityS} s`);
  }

  test('the SSH session serving pgha on one host killed mid-stage: that host fails with the reason, the next apply converges', async () => {
    await failsMidStageThenConverges(async () => `killed sshd session process ${await sh(HOST, KILL_PGHA_SESSION)} on ${HOST}`, true);
  });

  test('the host rebooting (a power cycle) mid-stage: that host fails with the reason, the next apply converges, 0 lost', async () => {
    await failsMidStageThenConverges(async () => {
      await lab.poweroff(HOST);
      const { sshMs } = await lab.start(HOST);
      return `${HOST} power-cycled; it answered ssh ${(sshMs / 1000).toFixed(1)} s after its start`;
    }, false);
  });
});
