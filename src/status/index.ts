// `pgha status`: one view of the whole cluster, gathered from the hosts, with a verdict.
// Exit code: 0 healthy, 1 degraded, 2 down.
import { loadInventory } from '../inventory/index.js';
import { Reporter } from '../engine/index.js';
import { secretMasker } from '../cluster/session.js';
import { gatherStatus } from './gather.js';
import { assembleStatus, type StatusReport, type Verdict } from './model.js';
import { formatStatus } from './format.js';

export { assembleStatus, normalizeRole, type StatusInputs, type StatusReport, type Verdict } from './model.js';
export { formatStatus } from './format.js';
export { gatherStatus } from './gather.js';

export const VERDICT_EXIT: Record<Verdict, number> = { healthy: 0, degraded: 1, down: 2 };

export interface StatusOptions {
  json?: boolean;
  watch?: boolean;
  verbose?: boolean;
  /** Color and screen clearing (default: stdout is a terminal). */
  tty?: boolean;
  out?: (text: string) => void;
  /** Watch mode: refresh period. */
  intervalMs?: number;
}

export async function clusterStatus(file: string, opts: { verbose?: boolean } = {}): Promise<{ report: StatusReport; ms: number }> {
  const inv = await loadInventory(file);
  const started = Date.now();
  const inputs = await gatherStatus(inv, { reporter: new Reporter({ verbose: opts.verbose, out: process.stderr }) });
  return { report: assembleStatus(inputs), ms: Date.now() - started };
}

export async function runStatus(file: string, opts: StatusOptions = {}): Promise<number> {
  const write = opts.out ?? ((t: string) => process.stdout.write(t));
  const tty = opts.tty ?? process.stdout.isTTY === true;
  const inv = await loadInventory(file); // bad input fails before anything is printed
  // Hosts' answers and errors are shown as they came: mask them once, here (JSON spellings too).
  const masker = secretMasker(inv);
  const out = (t: string) => write(masker.mask(t));
  const once = async () => {
    const started = Date.now();
    const report = assembleStatus(await gatherStatus(inv, { reporter: new Reporter({ verbose: opts.verbose, out: process.stderr, masker }) }));
    const ms = Date.now() - started;
    if (opts.json) out(`${JSON.stringify({ ...report, elapsed_ms: ms }, null, 2)}\n`);
    else out(formatStatus(report, { color: tty, elapsedMs: ms }));
    return VERDICT_EXIT[report.verdict];
  };
  if (!opts.watch) return once();
  // Until Ctrl+C (the default SIGINT handling ends the process).
  for (;;) {
    const started = Date.now();
    if (tty && !opts.json) out('\x1b[H\x1b[2J');
    await once();
    if (!opts.json) out(`\nrefreshing every ${(opts.intervalMs ?? 2000) / 1000}s; Ctrl+C to stop\n`);
    await new Promise((res) => setTimeout(res, Math.max(0, (opts.intervalMs ?? 2000) - (Date.now() - started))));
  }
}
