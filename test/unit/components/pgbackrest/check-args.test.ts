// `pgbackrest check` on the repository host with the leader alone: the arguments leave exactly the
// leader as a database host of the rendered pgbackrest.conf, whatever its position in the list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHost } from '../../../../src/components/index.js';
import { PGBACKREST_CONF } from '../../../../src/components/pgbackrest/paths.js';
import { leaderOnlyArgs, PG_HOST_OPTIONS } from '../../../../src/components/pgbackrest/runner.js';
import { fixtureInventory } from '../../inventory-fixture.js';

/** pgbackrest.conf's options as pgBackRest reads them after the command line's --X=V and --reset-X. */
function effective(conf: string, args: string[]): Map<string, string> {
  const opts = new Map<string, string>();
  for (const line of conf.split('\n')) {
    const m = /^([a-z0-9-]+)=(.*)$/.exec(line);
    if (m) opts.set(m[1], m[2]);
  }
  for (const a of args) {
    const reset = /^--reset-(.+)$/.exec(a);
    const set = /^--([^=]+)=(.*)$/.exec(a);
    if (reset) opts.delete(reset[1]);
    else if (set) opts.set(set[1], set[2]);
  }
  return opts;
}

test('leader-only check: every pgN option but pg1 reset, pg1-host the leader, for a leader at any index', async () => {
  const inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg3'], postgres: ['pg1', 'pg2', 'pg3', 'pg4'], haproxy: ['pg1'] });
  const conf = renderHost(inv, 'bk', { dcs: 'etcd' }).find((f) => f.path === PGBACKREST_CONF)!.content;
  // The rendered file's per-host options are those the arguments know how to reset.
  const suffixes = new Set([...conf.matchAll(/^pg\d+-([a-z-]+)=/gm)].map((m) => m[1]));
  assert.deepEqual([...suffixes].sort(), [...PG_HOST_OPTIONS].sort());
  for (const leader of ['pg1', 'pg3', 'pg4']) {
    const opts = effective(conf, leaderOnlyArgs(inv, leader));
    const pgKeys = [...opts.keys()].filter((k) => /^pg\d+-/.test(k)).sort();
    assert.deepEqual(pgKeys, PG_HOST_OPTIONS.map((o) => `pg1-${o}`).sort(), leader);
    assert.equal(opts.get('pg1-host'), inv.hosts.find((h) => h.name === leader)!.address);
    assert.equal(opts.get('pg1-host-user'), 'postgres');
  }
  assert.throws(() => leaderOnlyArgs(inv, 'bk'), /the leader bk is not a postgres host of the inventory/);
});
