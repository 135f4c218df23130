import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeLost } from '../../../../src/components/pgbackrest/record.js';
import { parseInfo } from '../../../../src/components/pgbackrest/info.js';
import { fixtureInventory } from '../../inventory-fixture.js';

const backup = (label: string, type: string, stop: number) => ({ label, type, timestamp: { start: stop - 10, stop }, info: { size: 1, delta: 1, repository: { size: 1, delta: 1 } } });

test("a lost repository: the backups etcd's copy of its list names, its WAL range, or plainly that pgha cannot name them", async () => {
  const inv = await fixtureInventory({ etcd: ['pg1', 'pg2', 'pg3'], postgres: ['pg1', 'pg2', 'pg3'], haproxy: ['pg1'] });
  const info = parseInfo(
    JSON.stringify([
      {
        name: 'main',
        status: { code: 0, message: 'ok' },
        archive: [{ min: '000000010000000000000001', max: '00000002000000000000001A' }],
        backup: [backup('20261201-040333F', 'full', 1764561817), backup('20261201-040333F_20261201-042714D', 'diff', 1764563238)],
      },
    ]),
    'main',
  );
  assert.equal(
    describeLost(inv, info),
    "lost with bk's old disk: 2 backups, 20261201-040333F (full, finished 2025-12-01 04:03:37+00), 20261201-040333F_20261201-042714D (diff, finished 2025-12-01 04:27:18+00), " +
      'and the WAL archived from 000000010000000000000001 to 00000002000000000000001A: no restore can reach a time before the new full backup',
  );
  assert.equal(describeLost(inv, null), "lost with bk's old disk: every backup and all archived WAL it held (pgha has no copy of its backup list in etcd to name them)");
  assert.equal(describeLost(inv, parseInfo(JSON.stringify([{ name: 'main', status: { code: 2, message: 'no valid backups' } }]), 'main')), "bk's old disk held no backup (pgha's copy of its backup list in etcd); its archived WAL is lost");
});
