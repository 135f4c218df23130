// Patroni's timing as it really runs: the inventory's profile (or its overrides) adjusted by the
// rules the installed Patroni enforces, and what an unplanned failover then takes, as measured on
// the lab. Patroni 3.2 and later (Debian 13's 4.0.7) raise ttl to at least 20 s, loop_wait to 1 and
// retry_timeout to 3, then keep loop_wait + 2 * retry_timeout <= ttl (patroni/config.py,
// _validate_and_adjust_timeouts). pgha writes the adjusted numbers into the DCS, so Patroni's
// dynamic configuration says what is in effect; apply and status say it too.
import type { Timing } from '../../inventory/index.js';
import { patroniVersionNumber } from './version.js';

export interface PatroniTiming {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
}

export interface EffectiveTiming extends PatroniTiming {
  /** What the inventory asked, when the Patroni version changes it. */
  asked?: PatroniTiming;
  /** The Patroni that changes it (the newest of the hosts). */
  by?: string;
  /** The newest Patroni is 3.2 or later (Debian 13's 4.0.7): its failovers were measured apart. */
  modern?: boolean;
}

/** From this version on Patroni enforces the minimums below. */
const ENFORCING = 3_002_000;
const MIN = { ttl: 20, loop_wait: 1, retry_timeout: 3 };

const newest = (versions: string[]) => [...versions].sort((a, b) => patroniVersionNumber(b) - patroniVersionNumber(a))[0];

/** Pure: the timing the newest of these Patroni versions runs with (none enforces anything below 3.2). */
export function effectiveTiming(asked: PatroniTiming, versions: string[]): EffectiveTiming {
  const v = newest(versions);
  if (v === undefined || patroniVersionNumber(v) < ENFORCING) return { ...asked };
  const modern = true;
  const ttl = Math.max(asked.ttl, MIN.ttl);
  let loop_wait = Math.max(asked.loop_wait, MIN.loop_wait);
  let retry_timeout = Math.max(asked.retry_timeout, MIN.retry_timeout);
  if (MIN.loop_wait + 2 * retry_timeout > ttl) {
    loop_wait = MIN.loop_wait;
    retry_timeout = Math.floor((ttl - MIN.loop_wait) / 2);
  } else if (loop_wait + 2 * retry_timeout > ttl) {
    loop_wait = ttl - 2 * retry_timeout;
  }
  const out = { ttl, loop_wait, retry_timeout };
  const changed = out.ttl !== asked.ttl || out.loop_wait !== asked.loop_wait || out.retry_timeout !== asked.retry_timeout;
  return changed ? { ...out, asked: { ...asked }, by: v, modern } : { ...out, modern };
}

/**
 * Unplanned failover (leader cut off or powered off: write unavailability through HAProxy) per
 * profile, measured on the container lab (`npm run bench`, test/cluster/faults.test.ts and
 * test/cluster/trixie.test.ts): Patroni 3.0.2 (Debian 12) takes the profiles' ttl as it is,
 * Patroni 4.0.7 (Debian 13) runs balanced and fast with ttl 20. Keep in step with the README.
 */
const MEASURED: Record<'before32' | 'from32', Record<Timing['profile'], string>> = {
  before32: { safe: '25-34 s', balanced: '13-16 s', fast: '9-12 s' },
  from32: { safe: '36-37 s', balanced: '23-27 s', fast: '23-27 s' },
};

/**
 * What an unplanned failover takes with this timing: the lab's measurement for an unchanged
 * profile; otherwise the rule it follows (the lock expires ttl - loop_wait..ttl after the fault,
 * then ~3 s to elect, promote and route).
 */
export function failoverExpectation(timing: Timing, eff: EffectiveTiming): string {
  if (!timing.overridden) return `about ${MEASURED[eff.modern ? 'from32' : 'before32'][timing.profile]} (measured on the lab)`;
  return `about ${eff.ttl - eff.loop_wait + 3}-${eff.ttl + 3} s (the lock expires ttl - loop_wait to ttl after the fault, then ~3 s to elect, promote and route)`;
}

const fmt = (t: PatroniTiming) => `ttl ${t.ttl} s, loop_wait ${t.loop_wait} s, retry_timeout ${t.retry_timeout} s`;

/** A Debian package version's upstream part, for messages: 4.0.7-3~deb13u1 -> 4.0.7. */
const upstream = (v: string) => v.replace(/-[^-]*$/, '');

/** "ttl 12 s" for each number Patroni changes. */
function raisedParts(eff: EffectiveTiming): string {
  const keys = ['ttl', 'loop_wait', 'retry_timeout'] as const;
  return keys.filter((k) => eff.asked![k] !== eff[k]).map((k) => `${k} ${eff.asked![k]} s`).join(', ');
}

/** One line for apply's output and `pgha status`: the numbers in effect, and what a failover takes. */
export function timingSummary(timing: Timing, eff: EffectiveTiming): string {
  const source = timing.overridden ? `timing ${timing.profile} with the inventory's patroni.* overrides` : `timing ${timing.profile}`;
  const whose = timing.overridden ? "inventory's" : "profile's";
  const raised = eff.asked ? ` (Patroni ${upstream(eff.by!)} raises the ${whose} ${raisedParts(eff)}: from Patroni 3.2 on ttl is at least 20 s)` : '';
  return `${source}: ${fmt(eff)}${raised}; an unplanned failover takes ${failoverExpectation(timing, eff)}`;
}

/** The end-of-run note when Patroni changes the inventory's timing, or null. */
export function raisedTimingNote(timing: Timing, eff: EffectiveTiming): string | null {
  if (!eff.asked) return null;
  const whose = timing.overridden ? "the inventory's" : `the ${timing.profile} profile's`;
  const same = timing.profile !== 'safe' && !timing.overridden ? '; balanced and fast both run with ttl 20 s there (fast only checks more often)' : '';
  return (
    `Patroni ${upstream(eff.by!)} runs with ${fmt(eff)}, not ${whose} ${fmt(eff.asked)}: an unplanned failover takes ` +
    `${failoverExpectation(timing, eff)}${same}. pgha writes these numbers into Patroni's dynamic configuration`
  );
}
