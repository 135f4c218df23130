// Health gates: poll a probe until it says ready, with no fixed sleeps. The caller awaits
// them between stages (e.g. "etcd has quorum" before Patroni starts).
import { PghaError } from '../errors.js';
import type { Reporter } from './reporter.js';

/** true when ready; otherwise the reason it is not (shown on timeout). A throw counts as not ready, except GiveUp. */
export type Probe = () => Promise<true | string>;

/** Thrown by a probe when waiting longer cannot help (e.g. the process it waits for has died): ends the wait at once. */
export class GiveUp extends PghaError {}

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between probes. Default 1000. */
  intervalMs?: number;
  reporter?: Reporter;
}

export async function waitFor(description: string, probe: Probe, opts: WaitOptions): Promise<void> {
  const { timeoutMs, intervalMs = 1000, reporter } = opts;
  const start = Date.now();
  const deadline = start + timeoutMs;
  let reason = 'not probed yet';
  reporter?.waitStart(description);
  for (;;) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      // A probe that hangs must not outlive the deadline.
      const r = await Promise.race([
        probe(),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve('the probe did not answer in time'), Math.max(left, 0)))),
      ]);
      if (r === true) {
        reporter?.waitEnd(description, true, `${((Date.now() - start) / 1000).toFixed(1)}s`);
        return;
      }
      reason = r;
    } catch (err) {
      if (err instanceof GiveUp) {
        reporter?.waitEnd(description, false, err.message);
        throw err;
      }
      reason = err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
    }
    reporter?.waitProgress(description, reason);
    if (Date.now() + intervalMs > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  reporter?.waitEnd(description, false, reason);
  throw new PghaError(`timed out after ${timeoutMs / 1000}s waiting for ${description}; last: ${reason}`);
}
