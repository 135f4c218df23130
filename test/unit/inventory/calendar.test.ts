// OnCalendar expressions: the pure check (src/inventory/calendar.ts) against a table, the table
// against this machine's own `systemd-analyze calendar` (when it has one), and the check apply
// runs on the repository host before the timers are written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calendarProblem } from '../../../src/inventory/calendar.js';
import { calendarCheck } from '../../../src/components/pgbackrest/index.js';
import { Facts } from '../../../src/engine/facts.js';
import { LocalConnection } from '../../../src/ssh/index.js';

// Accepted by systemd 252 (Debian 12).
const VALID = [
  'Sun *-*-* 01:00:00', 'Mon..Sat *-*-* 01:00:00', 'Mon,Wed,Fri 02:30', 'Sat,Sun', 'Mon,', 'Mon-Fri 08:00',
  'Monday 12:00', 'sun 12:00', 'Sun  12:00', 'Wed..Sat,Tue 12-10-15 1:2:3',
  'minutely', 'hourly', 'daily', 'Daily', 'weekly', 'monthly', 'yearly', 'annually', 'quarterly',
  'semiannually', 'semi-annually', 'biannually', 'bi-annually',
  '*-*-* *:*:*', '*-*-* *:*', '*:*', '*-*', '*:0/15', '*-*-* *:*:0/0.5', '00:00:01.9999999', '12:00:00.5',
  '00:00:05..10', '12:00:00..5', '00:00:5..5/2', '00:00:5.5..7',
  '2003-03-05', '2003-03-05 05:40', '03-05 08:05:40', '05:40', '*-*-1,15 03:00', '*-*-1..5', '*-*-5..5',
  '*-*-1..3/5', '*-*-1..4/2', '*:0..59/60', '*-1/3-1', '*-*-1/30', '2199-12-31', '00-01-01', '99-01-01',
  '*-02~03', '*-*~1 00:00', '*-*~1..3', '*-*~28', '*-*~1,2,3,4',
  '@0', '@1700000000',
  '12:00 UTC', '12:00 utc', 'Mon UTC', '*-*-* 01:00:00 UTC', 'Mon *-*-* 01:00:00 Europe/Berlin', '01:00 Etc/GMT+5',
];

// Refused by systemd 252.
const INVALID = [
  '*-*-*/2', '*:*/15', '*:*:*.5', 'Mon..', 'Mon..Wed..Fri', 'Wed..Mon', 'Mond', 'Mon 12', '12', '2024',
  '*', '1969-01-01', '2200-01-01', '*-13-01', '*-*-32', '*-*-* 24:00', '*-*-* 00:60', '*-*-* 00:00:60',
  '*:0/60', '0/24:00', '12:00:00.', '00:00:05..05', '*-*-6..5', '*-*~29', '*-*~3..1', '*-*~1-1',
  '1.5:00', '-1:00', '1:2:3:4', 'Mon,,Tue', '2024~1~1', '12:00  UTC', '12:00 UTC UTC', 'UTC',
  '@',
];

// Time zone names: the pure check knows their form only; the host's zoneinfo decides (apply asks
// the host's systemd-analyze, see below).
const HOST_DECIDES = ['Mon *-*-* 01:00:00 Nowhere/Else', '01:00 Mars/Olympus_Mons'];

// What systemd-analyze takes but pgha refuses anyway: trailing spaces (systemd skips them after
// weekdays only, and strips them from a unit file line anyway).
const STRICTER = ['Mon..Fri ', 'Sat,Sun '];

// Never a unit file value, whatever the grammar: each refused with its own reason.
const UNSAFE: [string, RegExp][] = [
  ['Sun *-*-* 01:00:00 \\', /contains a backslash: at the end of a unit file line it joins the next line/],
  ['daily\nOnActiveSec=1', /contains a newline \(\\n\): a unit file value is one line/],
  ['daily\r', /contains a carriage return \(\\r\)/],
  ['da\x00ily', /contains a NUL character \(\\x00\)/],
  ['daily\x1b[31m', /contains an ESC character \(\\x1b\)/],
  ['%H 01:00', /contains %: systemd expands % specifiers/],
  ['daily; rm', /contains ";"/],
  ['"daily"', /contains """/],
  ['', /^empty/],
  ['   ', /^empty/],
  [' daily', /leading or trailing spaces/],
];

test('calendar: the expressions systemd accepts pass', () => {
  for (const v of VALID) assert.equal(calendarProblem(v), null, v);
});

test('calendar: the expressions systemd refuses are refused, saying what is expected', () => {
  for (const v of [...INVALID, ...STRICTER]) assert.match(calendarProblem(v) ?? 'accepted', /expected a systemd OnCalendar expression/, v);
  for (const v of INVALID) assert.match(calendarProblem(v)!, /^not a calendar expression systemd accepts, /, v);
});

test('calendar: a time zone name is only checked for its form (the host knows its zones)', () => {
  for (const v of HOST_DECIDES) assert.equal(calendarProblem(v), null, v);
  assert.match(calendarProblem('01:00 Europe/../../etc') ?? 'accepted', /not a calendar expression/);
});

test('calendar: values that cannot be one unit file line are refused with the reason', () => {
  for (const [v, why] of UNSAFE) assert.match(calendarProblem(v) ?? 'accepted', why, JSON.stringify(v));
});

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const version = Number(/systemd (\d+)/.exec(analyze.stdout ?? '')?.[1] ?? 0);

test('calendar: the table agrees with this machine\'s systemd-analyze calendar', { skip: version === 0 ? 'systemd-analyze is not installed here' : false }, () => {
  const accepts = (v: string) => spawnSync('systemd-analyze', ['calendar', '--', v], { encoding: 'utf8' }).status === 0;
  for (const v of VALID) assert.ok(accepts(v), `systemd ${version} refuses ${JSON.stringify(v)}`);
  for (const v of INVALID) assert.ok(!accepts(v), `systemd ${version} accepts ${JSON.stringify(v)}`);
  for (const v of STRICTER) assert.ok(accepts(v), `systemd ${version} refuses ${JSON.stringify(v)}`);
  for (const v of HOST_DECIDES) assert.ok(!accepts(v), `systemd ${version} accepts ${JSON.stringify(v)}`);
});

test('apply checks the schedule with the host\'s systemd-analyze, read-only, before writing timers', { skip: version === 0 ? 'systemd-analyze is not installed here' : false }, async () => {
  const conn = new LocalConnection();
  const run = (full: string, diff = 'Mon..Sat *-*-* 01:00:00') => calendarCheck({ full, diff }).check(conn, new Facts(conn));
  assert.equal(await run('Sun *-*-* 01:00:00'), null, 'nothing to change: the op reports ok');
  // A zone the pure check cannot know: the host's systemd decides, and its message is shown.
  await assert.rejects(run('Sun *-*-* 01:00:00 Nowhere/Else'), /^PghaError: pgbackrest\.schedule\.full "Sun \*-\*-\* 01:00:00 Nowhere\/Else": systemd refuses it: Failed to parse calendar specification/);
  await assert.rejects(run('Sun *-*-* 01:00:00', '2003-03-05'), /pgbackrest\.schedule\.diff "2003-03-05": systemd accepts it, but it never elapses again/);
  // One argument, quoted for the shell: a value is never run as shell syntax.
  const marker = join(mkdtempSync(join(tmpdir(), 'pgha-calendar-')), 'ran');
  await assert.rejects(run(`daily'; touch ${marker}; echo '`), /systemd refuses it/);
  assert.equal(existsSync(marker), false);
});
