// HAProxy: the config rendered whole; a changed config reloads HAProxy on that host only.
// Gate: on every HAProxy host, the primary backend has exactly the Patroni leader up.
import type { ApplyContext } from '../context.js';
import { renderedFile } from '../context.js';
import { reloadIfRunning, renderedFileOp, serviceStarted } from '../ops.js';
import { haproxyRoutesToLeader } from '../../cluster/health.js';

export async function haproxyComponent(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  await rollout.stage('haproxy', session.withRole('haproxy'), (conn) => [
    renderedFileOp(renderedFile(ctx, conn.target.name, '/etc/haproxy/haproxy.cfg'), [reloadIfRunning('haproxy')]),
    serviceStarted('haproxy'),
  ]);
  if (rollout.check) return;
  await rollout.waitFor('HAProxy: the primary port routes to the leader', () => haproxyRoutesToLeader(session), { timeoutMs: 60_000, intervalMs: 1000 });
}

