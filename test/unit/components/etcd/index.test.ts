import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runtimePart } from '../../../../src/components/etcd/index.js';

test('etcd config: only a change to a setting a running member uses restarts it (not comments, not the first-start lines)', () => {
  const base = ['# header', 'ETCD_NAME="pg1"', 'ETCD_INITIAL_CLUSTER="pg1=http://a:2380,pg2=http://b:2380"', 'ETCD_INITIAL_CLUSTER_STATE="new"', 'ETCD_ENABLE_V2="true"', ''].join('\n');
  const grown = base.replace('pg2=http://b:2380', 'pg2=http://b:2380,pg3=http://c:2380').replace('"new"', '"existing"').replace('# header', '# another comment\n');
  assert.equal(runtimePart(grown), runtimePart(base));
  assert.notEqual(runtimePart(base.replace('ETCD_ENABLE_V2="true"\n', '')), runtimePart(base));
  assert.notEqual(runtimePart(base.replace('ETCD_INITIAL_CLUSTER_TOKEN', 'X')), runtimePart(base.replace('ETCD_NAME="pg1"', 'ETCD_NAME="pg9"')));
});
