// `pgha notify test`: sends a test event from one database host to every webhook of
// notifications.webhooks, through the same notifier (and settings) Patroni's callback uses, and
// prints each webhook's outcome. Only a webhook's scheme, host and port are shown.
import { InputError, PghaError } from '../../errors.js';
import { NOTIFY_CONFIG, NOTIFY_SCRIPT, webhookOrigin } from '../../components/notifications/index.js';
import type { CommandContext } from '../context.js';

export async function notifyTest(ctx: CommandContext, opts: { member?: string }): Promise<number> {
  const inv = await ctx.inventory();
  const hooks = inv.notifications.webhooks;
  if (!hooks.length) throw new InputError(`${ctx.inventoryFile}: notifications.webhooks is empty: there is no webhook to send a test event to`);
  const members = inv.hostsWithRole('postgres');
  const member = opts.member === undefined ? members[0] : members.find((h) => h.name === opts.member);
  if (!member) throw new InputError(`--member ${opts.member}: not a postgres host of ${ctx.inventoryFile}, expected one of: ${members.map((h) => h.name).join(', ')}`);
  const session = await ctx.session({ hosts: [member] });
  const conn = session.conn(member.name);
  if ((await conn.run(['test', '-x', NOTIFY_SCRIPT, '-a', '-s', NOTIFY_CONFIG], { check: false })).code !== 0) {
    throw new PghaError(`${member.name}: the notifier is not installed (${NOTIFY_SCRIPT}, ${NOTIFY_CONFIG}): run pgha apply first`);
  }
  ctx.out(`test event from ${member.name} to ${hooks.length} webhook${hooks.length === 1 ? '' : 's'}\n`);
  // One try per webhook, each bounded by its timeout, all at once.
  const limit = Math.max(...hooks.map((h) => h.timeout)) + 15;
  const r = await conn.run([NOTIFY_SCRIPT, 'test'], { user: 'postgres', check: false, timeoutMs: limit * 1000 });
  const lines = r.stdout.split('\n').filter(Boolean);
  for (const h of hooks) {
    const line = lines.find((l) => l.startsWith(`${h.name}: `));
    ctx.out(`  ${h.name} (${webhookOrigin(h.url)}): ${line ? line.slice(h.name.length + 2) : 'no result'}\n`);
  }
  if (r.code !== 0 && !lines.length) throw new PghaError(`${member.name}: the notifier failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return r.code === 0 ? 0 : 1;
}
