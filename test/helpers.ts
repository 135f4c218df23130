// Shared by the lab tests: run the pgha CLI and read its output. Under `npm test` (test/run.sh, whose
// `npm ci` has just built it) that is the built CLI, as installed; a test file run on its own runs
// the source with tsx, so an edit needs no build.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
/**
 * node's arguments that run the pgha CLI (cwd: REPO): bin/pgha.js when PGHA_TEST_BUILT=1 (set by
 * test/run.sh), else the source with tsx, which costs about 0.4 s of CPU more per call.
 */
export const PGHA_CLI = process.env.PGHA_TEST_BUILT === '1' ? ['bin/pgha.js'] : ['--import', 'tsx', 'src/cli/main.ts'];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  timeoutMs?: number;
  /** Kill the run (SIGKILL, like a crash) as soon as its output matches this. */
  killWhen?: RegExp;
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Run the built entry point (bin/pgha.js over dist/, as installed) instead of the source. */
  built?: boolean;
}

/** Runs `pgha ARGS` (PGHA_CLI). Never rejects: the exit code is in the result. */
export function pgha(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const entry = opts.built ? ['bin/pgha.js'] : PGHA_CLI;
    const child = spawn(process.execPath, [...entry, ...args], {
      cwd: REPO,
      // Run logs of the tests' runs stay with the test output (not in the user's state dir).
      env: { PGHA_LOG_DIR: `${REPO}test-output/logs`, ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const watch = () => {
      if (!killed && opts.killWhen && opts.killWhen.test(stdout + stderr)) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      watch();
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      watch();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20 * 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 128), stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** The RECAP block of an apply run: host -> counts. */
export function recap(stdout: string): Map<string, { ok: number; changed: number; failed: number }> {
  const out = new Map<string, { ok: number; changed: number; failed: number }>();
  const at = stdout.lastIndexOf('RECAP');
  for (const line of stdout.slice(at).split('\n')) {
    const m = /^(\S+)\s+ok=(\d+)\s+changed=(\d+)\s+failed=(\d+)/.exec(line);
    if (m) out.set(m[1], { ok: +m[2], changed: +m[3], failed: +m[4] });
  }
  return out;
}

/**
 * A healthy cluster on the lab, whatever state the previous test file left: the lab's machines
 * are booted if needed; a cluster that `pgha status` does not call healthy (every member
 * running and streaming, etcd, HAProxy's routing, WAL archiving; a second instead of verify's
 * five: the previous file's scenarios ended verified) and that does not verify either is
 * applied again, and if that fails, rebuilt from fresh machines. Returns the lab inventory path.
 */
export async function ensureCluster(log: (s: string) => void = () => {}): Promise<string> {
  const lab = await import('./lab/lab.js');
  if (!lab.isUp()) await lab.up();
  const inventory = lab.labInventoryPath();
  const status = await pgha(['status', '-i', inventory, '--json']);
  if (status.code === 0 && (JSON.parse(status.stdout) as { verdict?: string }).verdict === 'healthy') return inventory;
  if ((await pgha(['verify', '-i', inventory])).code === 0) return inventory;
  log('cluster does not verify: applying');
  let r = await pgha(['apply', '-i', inventory]);
  if (r.code !== 0) {
    log('apply failed on the existing machines: rebuilding from fresh machines');
    await lab.down();
    await lab.up();
    r = await pgha(['apply', '-i', inventory]);
  }
  if (r.code !== 0) throw new Error(`could not get a verified cluster:\n${r.stdout}\n${r.stderr}`);
  return inventory;
}

/** Every key of a JSON document is snake_case (the one key style of every --json of pgha). */
export function assertSnakeCase(doc: unknown, path = '$'): void {
  if (Array.isArray(doc)) doc.forEach((v, i) => assertSnakeCase(v, `${path}[${i}]`));
  else if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc)) {
      assert.match(k, /^[a-z][a-z0-9_]*$/, `${path}.${k} is not snake_case`);
      assertSnakeCase(v, `${path}.${k}`);
    }
  }
}
