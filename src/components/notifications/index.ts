// Failover notifications (`notifications.webhooks`): on every database host, Patroni's
// on_role_change callback runs pgha's notifier (templates/notifications/notify.py.hbs), which
// detaches at once and POSTs a JSON event (cluster, member, old and new role, timeline, time) to
// each webhook with bounded tries, so a slow or dead receiver never delays Patroni. Its settings,
// with the secret headers from the secrets file, are in /etc/pgha/notify.json (postgres, 0600).
// `pgha notify test` runs the notifier's test mode on a member (src/flows/notify).
import { directory } from '../../engine/index.js';
import type { Inventory } from '../../inventory/index.js';
import { fileOp } from '../../render/op.js';
import { renderFile, type RenderedFile } from '../../render/template.js';
import { dataDir } from '../patroni/paths.js';
import { renderedFile, type Component, type RenderInput } from '../types.js';

export const NOTIFY_SCRIPT = '/usr/local/lib/pgha/notify';
export const NOTIFY_CONFIG = '/etc/pgha/notify.json';

/** Patroni's postgresql.callbacks for the inventory, or null when no webhook is configured. */
export function patroniCallbacks(inv: Inventory): Record<string, string> | null {
  return inv.notifications.webhooks.length ? { on_role_change: NOTIFY_SCRIPT } : null;
}

/** Only scheme, host and port of a webhook URL are shown anywhere (its path may hold a token). */
export function webhookOrigin(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

/** The notifier's settings for a member (secret: the headers from the secrets file). */
export function notifyConfig(inv: Inventory, memberName: string, dataDirectory: string): string {
  const secretHeaders = inv.secrets?.webhook_headers ?? {};
  return `${JSON.stringify(
    {
      cluster: inv.cluster.name,
      member: memberName,
      postgres_port: inv.patroni.postgres_port,
      data_dir: dataDirectory,
      superuser: inv.patroni.users.superuser,
      retries: inv.notifications.retries,
      webhooks: inv.notifications.webhooks.map((w) => ({ name: w.name, url: w.url, timeout: w.timeout, headers: { ...w.headers, ...(secretHeaders[w.name] ?? {}) } })),
    },
    null,
    2,
  )}\n`;
}

function notificationFiles({ inv, host, platform }: RenderInput): RenderedFile[] {
  if (!host.roles.has('postgres') || !patroniCallbacks(inv)) return [];
  return [
    renderFile('notifications', NOTIFY_SCRIPT, 'notify.py.hbs', {}, { mode: 0o755 }),
    { path: NOTIFY_CONFIG, content: notifyConfig(inv, host.name, dataDir(inv, platform.release)), owner: 'postgres', group: 'postgres', mode: 0o600, component: 'notifications', secret: true },
  ];
}

export const notifications: Component = {
  name: 'notifications',
  files: notificationFiles,
  // Before Patroni's config names the callback, so a role change never finds it missing.
  async prepare(ctx) {
    if (!patroniCallbacks(ctx.session.inv)) return;
    await ctx.rollout.stage('notifications', ctx.session.withRole('postgres'), (conn) => [
      directory('/usr/local/lib/pgha', { owner: 'root', group: 'root', mode: 0o755 }),
      directory('/etc/pgha', { owner: 'root', group: 'root', mode: 0o755 }),
      fileOp(renderedFile(ctx, conn.target.name, NOTIFY_SCRIPT)),
      fileOp(renderedFile(ctx, conn.target.name, NOTIFY_CONFIG)),
    ]);
  },
};
