// etcd: every member configured, then started together (a member's first start waits for
// quorum), then a gate until every member is healthy and one leads.
import type { ApplyContext } from '../context.js';
import { renderedFile } from '../context.js';
import { renderedFileOp, restartNoBlock, serviceStarted } from '../ops.js';
import { etcdReady } from '../../cluster/health.js';

export async function etcdComponent(ctx: ApplyContext): Promise<void> {
  const { session, rollout } = ctx;
  const conns = session.withRole('etcd');
  await rollout.stage('etcd', conns, (conn) => [
    renderedFileOp(renderedFile(ctx, conn.target.name, '/etc/default/etcd'), [restartNoBlock('etcd')]),
    serviceStarted('etcd', { noBlock: true }),
  ]);
  if (rollout.check) return;
  await rollout.waitFor('etcd: every member healthy, one leader', () => etcdReady(session), { timeoutMs: 120_000, intervalMs: 1000 });
}

