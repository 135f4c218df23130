// systemd OnCalendar expressions (systemd.time(7)), checked without systemd: the grammar and the
// range rules of systemd 252's calendar_spec_from_string (src/shared/calendarspec.c), plus what a
// value in a unit file may not hold at all. One thing only the host can tell: whether it knows a
// time zone name (its /usr/share/zoneinfo); apply asks `systemd-analyze calendar` there.

import { controlCharacter } from '../terminal.js';

const CALENDAR_EXPECTED =
  'expected a systemd OnCalendar expression like "Sun *-*-* 01:00:00", "Mon..Fri 02:30" or "daily" (see systemd.time(7))';

/** What is wrong with `value` as an OnCalendar= value, or null when systemd accepts it. */
export function calendarProblem(value: string): string | null {
  if (value.trim() === '') return `empty, ${CALENDAR_EXPECTED}`;
  const control = controlCharacter(value);
  if (control) return `contains ${control}: a unit file value is one line, ${CALENDAR_EXPECTED}`;
  if (value.includes('\\')) {
    return `contains a backslash: at the end of a unit file line it joins the next line to it, ${CALENDAR_EXPECTED}`;
  }
  if (value.includes('%')) return `contains %: systemd expands % specifiers in unit files, ${CALENDAR_EXPECTED}`;
  const odd = /[^A-Za-z0-9 *:.,/~_+@-]/.exec(value);
  if (odd) return `contains "${odd[0]}", ${CALENDAR_EXPECTED}`;
  if (value !== value.trim()) return `leading or trailing spaces, ${CALENDAR_EXPECTED}`;
  return parses(value) ? null : `not a calendar expression systemd accepts, ${CALENDAR_EXPECTED}`;
}

// ---- the grammar (names and structure follow calendarspec.c, so the two can be compared) ----

interface Component {
  start: number;
  stop: number; // -1: none
  repeat: number; // 0: none
}
/** null: `*` (any value). */
type Chain = Component[] | null;

interface Spec {
  year: Chain;
  month: Chain;
  day: Chain;
  hour: Chain;
  minute: Chain;
  usec: Chain;
  endOfMonth: boolean;
}

class Invalid extends Error {}
const fail = (): never => {
  throw new Invalid();
};

const USEC_PER_SEC = 1_000_000;
const INT_MAX = 2 ** 31 - 1;
const MIN_YEAR = 1970;
const MAX_YEAR = 2199;
const COMPONENTS_MAX = 240;
const SHORTHANDS = new Set([
  'minutely', 'hourly', 'daily', 'monthly', 'weekly', 'yearly', 'annually', 'anually',
  'quarterly', 'semiannually', 'semi-annually', 'biannually', 'bi-annually',
]);
const DAYS: [string, number][] = [
  ['monday', 0], ['mon', 0], ['tuesday', 1], ['tue', 1], ['wednesday', 2], ['wed', 2],
  ['thursday', 3], ['thu', 3], ['friday', 4], ['fri', 4], ['saturday', 5], ['sat', 5], ['sunday', 6], ['sun', 6],
];
// A zoneinfo name (Europe/Berlin, UTC, Etc/GMT+5): whether the host has it, only the host knows.
const ZONE_RE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

function parses(value: string): boolean {
  const attempt = (text: string) => {
    try {
      return parseSpec(text);
    } catch (err) {
      if (err instanceof Invalid) return false;
      throw err;
    }
  };
  // systemd strips " UTC", or a last word that names a time zone, then parses the rest.
  if (/ utc$/i.test(value)) return attempt(value.slice(0, -4));
  if (attempt(value)) return true;
  const space = value.lastIndexOf(' ');
  return space > 0 && ZONE_RE.test(value.slice(space + 1)) && attempt(value.slice(0, space));
}

function parseSpec(text: string): boolean {
  if (text === '') return false;
  if (SHORTHANDS.has(text.toLowerCase())) return true;
  const spec: Spec = { year: null, month: null, day: null, hour: null, minute: null, usec: null, endOfMonth: false };
  const p = { s: text, i: 0 };
  parseWeekdays(p);
  if (!parseDate(p, spec)) parseCalendarTime(p, spec);
  if (p.i !== text.length) return false;
  normalize(spec);
  return valid(spec);
}

interface Cursor {
  s: string;
  i: number;
}
const at = (p: Cursor, k = 0) => p.s[p.i + k] ?? ''; // '' is the end
const skipSpaces = (p: Cursor) => {
  while (at(p) === ' ') p.i++;
};

function parseWeekdays(p: Cursor): void {
  let l = -1;
  let first = true;
  for (;;) {
    const rest = p.s.slice(p.i).toLowerCase();
    const day = DAYS.find(([name]) => rest.startsWith(name));
    if (!day) {
      if (first) return; // no weekday: the date follows
      fail();
    }
    const [name, nr] = day!;
    if (!['', '-', '.', ',', ' '].includes(at(p, name.length))) fail();
    if (l >= 0 && l > nr) fail();
    p.i += name.length;
    if (at(p) === '') return;
    if (at(p) === ' ') return skipSpaces(p);
    if (at(p) === '.') {
      if (l >= 0 || at(p, 1) !== '.') fail();
      l = nr;
      p.i += 2;
    } else if (at(p) === '-') {
      // A range with "-", kept by systemd for backwards compatibility.
      if (l >= 0) fail();
      l = nr;
      p.i += 1;
    } else if (at(p) === ',') {
      l = -1;
      p.i += 1;
    }
    // A trailing comma is fine, an open range is not.
    if (at(p) === '' || at(p) === ' ') {
      skipSpaces(p);
      if (l >= 0) fail();
      return;
    }
    first = false;
  }
}

/** A decimal number; for seconds (`usec`), in microseconds with an optional fraction. */
function parseComponentDecimal(p: Cursor, usec: boolean): number {
  const digits = /^[0-9]+/.exec(p.s.slice(p.i));
  if (!digits) fail();
  if (digits![0].length > 18) fail(); // strtoul's range, and far beyond any valid value
  let value = Number(digits![0]);
  p.i += digits![0].length;
  if (usec) {
    value *= USEC_PER_SEC;
    // One "." is a decimal point, ".." is a range.
    if (at(p) === '.' && at(p, 1) !== '.') {
      p.i++;
      const frac = /^[0-9]+/.exec(p.s.slice(p.i));
      if (!frac) fail();
      const f = frac![0];
      let add = Number(f.slice(0, 6).padEnd(6, '0'));
      if (f.length > 6 && f[6] >= '5') add++;
      value += add;
      p.i += f.length;
    }
  }
  if (value > INT_MAX) fail();
  return value;
}

function parseChain(p: Cursor, usec: boolean): Chain {
  if (at(p) === '*') {
    p.i++;
    return usec ? [{ start: 0, stop: -1, repeat: USEC_PER_SEC }] : null;
  }
  const chain: Component[] = [];
  for (let nesting = 0; ; nesting++) {
    if (nesting > COMPONENTS_MAX) fail();
    const c: Component = { start: parseComponentDecimal(p, usec), stop: -1, repeat: 0 };
    if (at(p) === '.' && at(p, 1) === '.') {
      p.i += 2;
      c.stop = parseComponentDecimal(p, usec);
      c.repeat = usec ? USEC_PER_SEC : 1;
    }
    if (at(p) === '/') {
      p.i++;
      c.repeat = parseComponentDecimal(p, usec);
      if (c.repeat === 0) fail();
    } else {
      if (c.start > INT_MAX - c.repeat) fail();
      // A seconds range without a repeat steps by 1 s: it must hold at least one step.
      if (usec && c.stop >= 0 && c.start + c.repeat > c.stop) fail();
    }
    if (!['', ' ', ',', '-', '~', ':'].includes(at(p))) fail();
    chain.push(c);
    if (at(p) !== ',') return chain;
    p.i++;
  }
}

/** True when the date part ended the expression (@EPOCH). */
function parseDate(p: Cursor, spec: Spec): boolean {
  if (at(p) === '') return false;
  if (at(p) === '@') {
    const digits = /^[0-9]{1,15}/.exec(p.s.slice(p.i + 1));
    if (!digits) fail();
    p.i += 1 + digits![0].length;
    const year = new Date(Number(digits![0]) * 1000).getUTCFullYear();
    if (Number.isNaN(year)) fail();
    spec.year = [{ start: year, stop: -1, repeat: 0 }];
    return true;
  }
  const t: Cursor = { s: p.s, i: p.i };
  const first = parseChain(t, false);
  // The end, or a ":": that was a time, not a date.
  if (at(t) === '' || at(t) === ':') return false;
  if (at(t) === '~') spec.endOfMonth = true;
  else if (at(t) !== '-') fail();
  t.i++;
  const second = parseChain(t, false);
  if (at(t) === '' || at(t) === ' ') {
    skipSpaces(t);
    p.i = t.i;
    spec.month = first;
    spec.day = second;
    return false;
  }
  if (spec.endOfMonth) fail();
  if (at(t) === '~') spec.endOfMonth = true;
  else if (at(t) !== '-') fail();
  t.i++;
  const third = parseChain(t, false);
  if (at(t) !== '' && at(t) !== ' ') fail();
  skipSpaces(t);
  p.i = t.i;
  spec.year = first;
  spec.month = second;
  spec.day = third;
  return false;
}

function parseCalendarTime(p: Cursor, spec: Spec): void {
  const zero = (): Chain => [{ start: 0, stop: -1, repeat: 0 }];
  if (at(p) === '') {
    // No time at all: 00:00:00.
    spec.hour = zero();
    spec.minute = zero();
    spec.usec = zero();
    return;
  }
  spec.hour = parseChain(p, false);
  if (at(p) !== ':') fail();
  p.i++;
  spec.minute = parseChain(p, false);
  if (at(p) === '') {
    spec.usec = zero();
    return;
  }
  if (at(p) !== ':') fail();
  p.i++;
  spec.usec = parseChain(p, true);
  if (at(p) !== '') fail();
}

function normalizeChain(chain: Chain): Chain {
  if (!chain) return chain;
  for (const c of chain) {
    // The length of a range becomes a multiple of its repeat; a range that cannot repeat even
    // once, or ends where it starts, becomes its start alone.
    if (c.stop > c.start && c.repeat > 0) c.stop -= (c.stop - c.start) % c.repeat;
    if ((c.stop > c.start && c.repeat > 0 && c.start + c.repeat > c.stop) || c.start === c.stop) {
      c.repeat = 0;
      c.stop = -1;
    }
  }
  const sorted = [...chain].sort((a, b) => a.start - b.start || a.stop - b.stop || a.repeat - b.repeat);
  return sorted.filter((c, i) => i === 0 || c.start !== sorted[i - 1].start || c.stop !== sorted[i - 1].stop || c.repeat !== sorted[i - 1].repeat);
}

function normalize(spec: Spec): void {
  if (spec.endOfMonth && !spec.day) spec.endOfMonth = false;
  // Two-digit years: 12 is 2012, 89 is 1989.
  const fixYear = (y: number) => (y >= 0 && y < 70 ? y + 2000 : y >= 70 && y < 100 ? y + 1900 : y);
  for (const c of spec.year ?? []) {
    c.start = fixYear(c.start);
    c.stop = fixYear(c.stop);
  }
  spec.year = normalizeChain(spec.year);
  spec.month = normalizeChain(spec.month);
  spec.day = normalizeChain(spec.day);
  spec.hour = normalizeChain(spec.hour);
  spec.minute = normalizeChain(spec.minute);
  spec.usec = normalizeChain(spec.usec);
}

function chainValid(chain: Chain, from: number, to: number, endOfMonth: boolean): boolean {
  for (const c of chain ?? []) {
    // systemd narrows `to` again for every further component of an end-of-month chain.
    if (endOfMonth) to -= 3;
    if (c.start < from || c.start > to) return false;
    if (c.repeat > to - from) return false;
    if (c.stop >= 0) {
      if (c.stop < from || c.stop > to) return false;
      if (c.start + c.repeat > c.stop) return false;
    } else {
      if (endOfMonth && c.start - c.repeat < from) return false;
      if (!endOfMonth && c.start + c.repeat > to) return false;
    }
  }
  return true;
}

function valid(spec: Spec): boolean {
  return (
    chainValid(spec.year, MIN_YEAR, MAX_YEAR, false) &&
    chainValid(spec.month, 1, 12, false) &&
    chainValid(spec.day, 1, 31, spec.endOfMonth) &&
    chainValid(spec.hour, 0, 23, false) &&
    chainValid(spec.minute, 0, 59, false) &&
    chainValid(spec.usec, 0, 60 * USEC_PER_SEC - 1, false)
  );
}
