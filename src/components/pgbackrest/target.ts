// Restore targets, checked against the repository BEFORE anything is stopped: a time that no
// backup can reach (before the end of the earliest backup), a time in the future, or a label
// the repository does not have is refused as bad input.
import { InputError } from '../../errors.js';
import type { BackupEntry, StanzaInfo } from './info.js';

/** Epoch seconds as `YYYY-MM-DD HH:MM:SS+00` (UTC, the form `--to` accepts back). */
export function formatEpoch(sec: number): string {
  return `${new Date(sec * 1000).toISOString().slice(0, 19).replace('T', ' ')}+00`;
}

export type RestoreTarget = { kind: 'time'; micros: number; text: string } | { kind: 'backup'; label: string };

const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * A point in time as PostgreSQL prints it (`select now()`: 2024-05-01 10:11:12.345678+00) or ISO
 * 8601 (2024-05-01T10:11:12Z). The UTC offset is required: a restore must not depend on whose
 * clock zone reads it. Returns microseconds since the epoch and the normalized UTC text.
 */
export function parseTargetTime(input: string): { micros: number; text: string } {
  const m = TIME.exec(input.trim());
  if (!m) {
    throw new InputError(
      `cannot read the restore target "${input}": expected a time with a UTC offset, like "2024-05-01 10:11:12+00" or "2024-05-01T10:11:12.5Z" (PostgreSQL's \`select now()\` prints this form)`,
    );
  }
  const [, y, mo, d, h, mi, s = '0', frac = '', zone] = m;
  let offsetMin = 0;
  if (!/^(Z|UTC)$/i.test(zone)) {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || '0');
    if (oh > 15 || om > 59) throw new InputError(`cannot read the restore target "${input}": bad UTC offset ${zone}`);
    offsetMin = sign * (oh * 60 + om);
  }
  const ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== +y || check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || +h > 23 || +mi > 59 || +s > 59) {
    throw new InputError(`cannot read the restore target "${input}": no such date or time`);
  }
  const micros = (ms - offsetMin * 60_000) * 1000 + Number(frac.padEnd(6, '0'));
  return { micros, text: formatMicros(micros) };
}

/** Microseconds since the epoch as `YYYY-MM-DD HH:MM:SS.ffffff+00`, the form passed to pgBackRest. */
export function formatMicros(micros: number): string {
  const sec = Math.floor(micros / 1_000_000);
  const frac = String(micros - sec * 1_000_000).padStart(6, '0');
  return `${new Date(sec * 1000).toISOString().slice(0, 19).replace('T', ' ')}.${frac}+00`;
}

export interface CheckedTarget {
  target: RestoreTarget;
  /** The backup the restore starts from (pgBackRest picks the same: the newest that ended before the target). */
  backup: BackupEntry;
}

/**
 * Refuses a target no restore can reach. `nowMicros` is the cluster's clock (a host's), not
 * the operator's. A backup's stop time is in whole seconds: the first safe instant is one second on.
 */
export function checkTarget(target: RestoreTarget, info: StanzaInfo, nowMicros: number): CheckedTarget {
  if (info.code !== 0) throw new InputError(`the repository cannot restore: stanza ${info.stanza} status ${info.code} (${info.message})`);
  const usable = info.backups.filter((b) => !b.error);
  if (!usable.length) throw new InputError(`the repository has no backup of stanza ${info.stanza} to restore from`);
  if (target.kind === 'backup') {
    const backup = usable.find((b) => b.label === target.label);
    if (!backup) {
      throw new InputError(`no backup labelled ${target.label} in the repository`, [`backups: ${usable.map((b) => b.label).join(', ')}`]);
    }
    return { target, backup };
  }
  const earliest = usable[0];
  const firstSafe = (earliest.stop + 1) * 1_000_000;
  if (target.micros < firstSafe) {
    throw new InputError(
      `restore target ${target.text} is before the end of the earliest backup (${earliest.label}, finished ${formatEpoch(earliest.stop)}): ` +
        `there is no consistent backup to restore from. The earliest possible target is ${formatMicros(firstSafe)}.`,
    );
  }
  if (target.micros > nowMicros) {
    throw new InputError(`restore target ${target.text} is in the future (the cluster's clock says ${formatMicros(nowMicros)})`);
  }
  const backup = [...usable].reverse().find((b) => (b.stop + 1) * 1_000_000 <= target.micros)!;
  return { target, backup };
}

/** pgBackRest's restore options for the target (promotion once it is reached). */
export function restoreArgs(stanza: string, checked: CheckedTarget): string[] {
  // --set: the backup shown to the operator, not one pgBackRest might pick differently.
  const common = [`--stanza=${stanza}`, '--delta', `--set=${checked.backup.label}`, '--target-action=promote'];
  const { target } = checked;
  return target.kind === 'time'
    ? ['pgbackrest', ...common, '--type=time', `--target=${target.text}`, 'restore']
    : ['pgbackrest', ...common, '--type=immediate', 'restore'];
}
