// pgha status's gathering over stand-in connections: which host's view of etcd is shown when the
// first one to answer sees no quorum (its own client certificate or link can be the cause); the
// URLs asked over a kept connection, and by curl on the host where its sshd forwards nothing.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gatherStatus } from '../../../src/flows/status/gather.js';
import type { Reach } from '../../../src/session/session.js';
import type { Connection, EachCommand, RunResult } from '../../../src/ssh/index.js';
import type { Inventory } from '../../../src/inventory/index.js';
import { fixtureInventory } from '../inventory-fixture.js';
import { restapiUrl } from '../../../src/components/patroni/paths.js';
import { createCa } from '../../../src/components/tls/ca.js';
import { caPaths } from '../../../src/components/tls/paths.js';

type View = ('ok' | string)[];

/** etcdStateCommand's output for a view: per member, its /health and its status (member 1 leads). */
function etcdOutput(view: View): string {
  return view
    .map((v, i) =>
      v === 'ok'
        ? `{"health":"true"}\n@@etcd ${2 * i} 200 0 \n{"header":{"member_id":"${i + 1}"},"leader":"1"}\n@@etcd ${2 * i + 1} 200 0 \n`
        : `\n@@etcd ${2 * i} 000 35 ${v}\n\n@@etcd ${2 * i + 1} 000 35 ${v}\n`,
    )
    .join('');
}

const isEtcd = (display: string | undefined) => /^etcd health and status/.test(display ?? '');

/** A host that answers etcd's question with its view, anything else with a failure; it counts its etcd questions. */
function standIn(name: string, view: View, asked: Map<string, number>): Connection {
  const answer = (display: string | undefined): RunResult => {
    if (!isEtcd(display)) return { code: 1, stdout: '', stderr: 'not asked in this test' };
    asked.set(name, (asked.get(name) ?? 0) + 1);
    return { code: 0, stdout: etcdOutput(view), stderr: '' };
  };
  return {
    target: { name } as Connection['target'],
    masker: undefined as unknown as Connection['masker'],
    run: async (_cmd, opts) => answer(opts?.display),
    runEach: async (cmds: EachCommand[]) => cmds.map((c) => answer(c.display)),
    readFile: async () => null,
    writeFileAtomic: async () => undefined,
    close: async () => undefined,
  };
}

/** Connections that come up in `order` (the first one is the etcd host asked first). */
function reachOf(inv: Inventory, views: Record<string, View>, order: string[], asked: Map<string, number>): Reach {
  const pending = new Map(
    inv.hosts.map((h) => {
      const delay = order.includes(h.name) ? order.indexOf(h.name) * 20 : 0;
      return [h.name, new Promise<Connection | undefined>((res) => setTimeout(() => res(standIn(h.name, views[h.name] ?? [], asked)), delay))] as const;
    }),
  );
  return { pending, unreachable: new Map(), session: async () => { throw new Error('unused'); }, close: async () => undefined };
}

let inv: Inventory;
before(async () => {
  process.env.PGHA_RUNTIME_DIR = join(mkdtempSync(join(tmpdir(), 'pgha-gather-')), 'run');
  inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg3'], postgres: ['pg1', 'pg2', 'pg3'], haproxy: ['pg1', 'pg2', 'pg3'] });
});

const healthyNames = (s: Awaited<ReturnType<typeof gatherStatus>>) => ('ok' in s.etcd ? s.etcd.ok.members.filter((m) => m.healthy).map((m) => m.name) : []);

test('status: the first etcd host sees no quorum (its certificate is refused): the others are asked, the view that sees most is shown', async () => {
  const refused = 'Send failure: Connection reset by peer';
  const views: Record<string, View> = {
    pg3: [refused, refused, 'SSL certificate problem: unable to get local issuer certificate'],
    pg1: ['ok', 'ok', 'SSL certificate problem: unable to get local issuer certificate'],
    pg2: ['ok', 'ok', 'SSL certificate problem: unable to get local issuer certificate'],
  };
  const asked = new Map<string, number>();
  const s = await gatherStatus(inv, reachOf(inv, views, ['pg3', 'pg1', 'pg2'], asked));
  assert.ok('ok' in s.etcd, JSON.stringify(s.etcd));
  assert.equal(s.etcd.ok.from, 'pg1');
  assert.deepEqual(healthyNames(s), ['pg1', 'pg2']);
  assert.match(s.etcd.ok.members[2].error ?? '', /unable to get local issuer certificate/);
  assert.deepEqual(Object.fromEntries(asked), { pg3: 1, pg1: 1, pg2: 1 });
});

test('status: the first etcd host sees a quorum: no other host is asked', async () => {
  const views: Record<string, View> = { pg2: ['ok', 'ok', 'Failed to connect'], pg1: ['ok', 'ok', 'ok'], pg3: ['ok', 'ok', 'ok'] };
  const asked = new Map<string, number>();
  const s = await gatherStatus(inv, reachOf(inv, views, ['pg2', 'pg1', 'pg3'], asked));
  assert.ok('ok' in s.etcd);
  assert.equal(s.etcd.ok.from, 'pg2');
  assert.deepEqual(healthyNames(s), ['pg1', 'pg2']);
  assert.deepEqual(Object.fromEntries(asked), { pg2: 1 });
});

test('status: no etcd host sees a quorum: the first view stays, etcd is down', async () => {
  const none: View = ['Failed to connect', 'Failed to connect', 'Failed to connect'];
  const asked = new Map<string, number>();
  const s = await gatherStatus(inv, reachOf(inv, { pg1: none, pg2: none, pg3: none }, ['pg1', 'pg2', 'pg3'], asked));
  assert.ok('ok' in s.etcd);
  assert.equal(s.etcd.ok.from, 'pg1');
  assert.deepEqual(healthyNames(s), []);
  assert.equal(asked.size, 3);
});

/** A kept connection's stand-in: its URLs answered by `web` (or refused by sshd), everything else failing; it records what it was asked. */
function keptStandIn(name: string, web: (url: string) => { status: number; body: string } | { error: string }, log: string[]): Connection {
  const c = standIn(name, [], new Map());
  return {
    ...c,
    runEach: async (cmds: EachCommand[]) => {
      log.push(...cmds.map((x) => `${name} ${x.display?.split(' ')[0]}`));
      return cmds.map(() => ({ code: 1, stdout: '', stderr: 'curl: (7) Failed to connect' }));
    },
    httpKept: async (urls: string[]) => {
      log.push(...urls.map((u) => `${name} kept ${u}`));
      return urls.map(web);
    },
  };
}

test('status: over a kept connection the URLs are asked without curl; where sshd forwards nothing, curl on the host asks', async () => {
  // HTTPS over a kept connection needs the cluster CA on this machine (without it curl on the host asks).
  const ca = caPaths(inv);
  mkdirSync(dirname(ca.cert), { recursive: true });
  if (!existsSync(ca.cert)) await createCa(inv, ca.cert, ca.key);
  const cluster = { members: [{ name: 'pg1', role: 'leader', state: 'running' }] };
  for (const [web, curl] of [
    [() => ({ status: 200, body: JSON.stringify(cluster) }), false],
    [() => ({ error: '(SSH) Channel open failure: administratively prohibited: open failed' }), true],
  ] as const) {
    const log: string[] = [];
    const pending = new Map(inv.hosts.map((h) => [h.name, Promise.resolve<Connection | undefined>(keptStandIn(h.name, web, log))] as const));
    const s = await gatherStatus(inv, { pending, unreachable: new Map(), session: async () => { throw new Error('unused'); }, close: async () => undefined });
    assert.ok(log.includes(`pg1 kept ${restapiUrl(inv, inv.host('pg1'), '/cluster')}`), log.join('\n'));
    assert.equal(log.includes('pg1 curl'), curl, log.join('\n'));
    if (curl) assert.deepEqual(s.patroni.pg1, { error: `GET ${restapiUrl(inv, inv.host('pg1'), '/cluster')} from pg1: curl: (7) Failed to connect` });
    else assert.deepEqual(s.patroni.pg1, { ok: cluster });
  }
});
