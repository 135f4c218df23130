import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../../../src/errors.js';
import {
  describeChange,
  hasLearners,
  joinInitialCluster,
  membershipProblem,
  parseMemberList,
  planMembership,
  withHealth,
  type EtcdLive,
  type LiveMember,
  type MemberTarget,
} from '../../../../src/components/etcd/membership.js';

const peer = (n: number) => `http://10.1.0.${n}:2380`;
const client = (n: number) => `http://10.1.0.${n}:2379`;
const target = (n: number): MemberTarget => ({ name: `pg${n}`, peerUrl: peer(n), clientUrl: client(n) });
function member(n: number, o: Partial<LiveMember> = {}): LiveMember {
  return { id: `a${n}`, name: `pg${n}`, peerUrls: [peer(n)], clientUrls: [client(n)], learner: false, healthy: true, leader: n === 1, ...o };
}
const live = (...members: LiveMember[]): EtcdLive => ({ members, version: '3.4.23' });
const hosts = ['pg1', 'pg2', 'pg3', 'pg4', 'pg5', 'bk'];
const plan = (l: EtcdLive, targets: number[], o: { replace?: string; learners?: boolean } = {}) =>
  planMembership(l, targets.map(target), { inventoryHosts: hosts, replace: o.replace, learners: o.learners ?? true }).changes;
const texts = (l: EtcdLive, targets: number[], o: { replace?: string; learners?: boolean } = {}) => plan(l, targets, o).map(describeChange);

test('member list: 64-bit ids exact (as hex, what etcdctl takes), learners, never-started members, by name', () => {
  const json =
    '{"header":{"cluster_id":6837994974889556568,"member_id":10158209152051976105,"raft_term":2},"members":[' +
    '{"ID":13357049747754637626,"name":"node3","peerURLs":["http://10.0.0.3:2380"],"clientURLs":["http://10.0.0.3:2379"]},' +
    '{"ID":10158209152051976105,"name":"node1","peerURLs":["http://10.0.0.1:2380"],"clientURLs":["http://10.0.0.1:2379"]},' +
    '{"ID":1,"peerURLs":["http://10.0.0.5:2380"],"isLearner":true}]}';
  const members = parseMemberList(json);
  assert.deepEqual(
    members.map((m) => [m.id, m.name, m.learner, m.clientUrls.length]),
    [
      ['8cf935673e2e17a9', 'node1', false, 1],
      ['b95dc5fa1622d93a', 'node3', false, 1],
      ['1', '', true, 0],
    ],
  );
});

test('health: a voter by endpoint health, a learner by endpoint status (it serves no reads); the leader and version from status', () => {
  const members = parseMemberList(
    '{"members":[{"ID":10,"name":"a","peerURLs":["http://h1:2380"],"clientURLs":["http://h1:2379"]},' +
      '{"ID":11,"name":"b","peerURLs":["http://h2:2380"],"clientURLs":["http://h2:2379"]},' +
      '{"ID":12,"name":"c","peerURLs":["http://h3:2380"],"clientURLs":["http://h3:2379"],"isLearner":true}]}',
  );
  const health = '[{"endpoint":"http://h1:2379","health":true},{"endpoint":"http://h2:2379","health":false,"error":"context deadline exceeded"}]';
  const status =
    '[{"Endpoint":"http://h1:2379","Status":{"header":{"member_id":10},"leader":10,"version":"3.4.23"}},' +
    '{"Endpoint":"http://h3:2379","Status":{"header":{"member_id":12},"leader":10,"version":"3.4.23"}}]';
  const l = withHealth(members, health, status);
  assert.equal(l.version, '3.4.23');
  assert.deepEqual(
    l.members.map((m) => [m.name, m.healthy, m.leader, m.error]),
    [
      ['a', true, true, undefined],
      ['b', false, false, 'context deadline exceeded'],
      ['c', true, false, undefined],
    ],
  );
  assert.equal(membershipProblem(l), 'not answering: b (context deadline exceeded)');
  assert.equal(membershipProblem({ ...l, members: l.members.filter((m) => m.name !== 'b') }), 'still a learner: c');
  assert.equal(membershipProblem({ ...l, members: l.members.filter((m) => m.name === 'a') }), true);
});

test('learners exist from etcd 3.4 (Debian 12 has 3.4.23)', () => {
  assert.equal(hasLearners('3.4.23'), true);
  assert.equal(hasLearners('3.5.16'), true);
  assert.equal(hasLearners('3.3.25'), false);
  assert.equal(hasLearners(''), false);
});

test('an unchanged membership plans nothing', () => {
  assert.deepEqual(plan(live(member(1), member(2), member(3)), [1, 2, 3]), []);
});

test('3 -> 5: new members one at a time, each a learner first', () => {
  assert.deepEqual(texts(live(member(1), member(2), member(3)), [1, 2, 3, 4, 5]), [
    'etcd: add pg4 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member',
    'etcd: add pg5 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member',
  ]);
});

test('5 -> 3: members that answer leave one at a time, stopped and their data removed on their hosts', () => {
  const changes = plan(live(member(1), member(2), member(3), member(4), member(5)), [1, 2, 3]);
  assert.deepEqual(changes.map(describeChange), [
    'etcd: remove member pg4, then stop etcd on pg4 and remove its data',
    'etcd: remove member pg5, then stop etcd on pg5 and remove its data',
  ]);
  assert.deepEqual(changes.map((c) => c.kind === 'remove' && c.host), ['pg4', 'pg5']);
});

test('replacing 2 of 3 members in one edit: the new ones join before the old ones leave, quorum kept at every step', () => {
  assert.deepEqual(
    plan(live(member(1), member(2), member(3)), [1, 4, 5]).map((c) => `${c.kind} ${c.kind === 'add' ? c.target.name : c.member.name}`),
    ['add pg4', 'add pg5', 'remove pg2', 'remove pg3'],
  );
});

test('a member that is down leaves first, before anything joins', () => {
  const l = live(member(1), member(2), member(3, { healthy: false, error: 'no answer' }));
  assert.deepEqual(texts(l, [1, 2, 4]), [
    'etcd: remove member pg3, which does not answer, then stop etcd on pg3 and remove its data',
    'etcd: add pg4 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member',
  ]);
});

test('a member that is down is never counted as healthy: removing members that answer is refused, with the reason and a safe order', () => {
  const l = live(member(1), member(2), member(3), member(4, { healthy: false }), member(5, { healthy: false }));
  assert.throws(
    () => plan(l, [3, 4, 5]),
    (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.equal(err.exitCode, 2);
      assert.equal(err.message, 'removing pg1 from etcd would lose quorum: 2 answering of 4 voting members (quorum 3) would be left, as pg4 and pg5 do not answer');
      assert.deepEqual(err.lines, [
        'Safe order: bring pg4 and pg5 back first (a member that is down still counts for the quorum), or remove them from roles.etcd in an apply of their own (a member that is down leaves safely); then remove pg1 and pg2.',
      ]);
      return true;
    },
  );
  // The same members down, the edit that removes them: safe (the ones down leave first).
  assert.deepEqual(plan(l, [1, 2, 3]).map((c) => c.kind === 'remove' && c.why), ['down', 'down']);
});

test('without quorum nothing is changed', () => {
  const l = live(member(1), member(2, { healthy: false }), member(3, { healthy: false }));
  assert.throws(() => plan(l, [1, 2, 3, 4, 5]), /^InputError: etcd has no quorum now: 1 answering of 3 voting members \(quorum 2\); not answering: pg2 and pg3\./);
});

test('without learners (etcd before 3.4) a new member votes before it runs: refused while a member is down', () => {
  const l = live(member(1), member(2), member(3, { healthy: false }));
  assert.throws(() => plan(l, [1, 2, 3, 4, 5], { learners: false }), (err: unknown) => {
    assert.ok(err instanceof InputError);
    assert.match(err.message, /^adding pg4 to etcd would lose quorum: etcd before 3\.4 has no learners: a member added is a voter before it has started, leaving 2 answering of 4 voting members \(quorum 3\)$/);
    assert.deepEqual(err.lines, ['Safe order: first remove pg3 from roles.etcd (a member that is down leaves safely) and apply, then add pg4.']);
    return true;
  });
  // With every member up it is safe, and said without "learner".
  assert.deepEqual(texts(live(member(1), member(2), member(3)), [1, 2, 3, 4], { learners: false }), ['etcd: add pg4, start it with ETCD_INITIAL_CLUSTER_STATE=existing']);
});

test('replace: the rebuilt host old member is removed, then it joins again; once it answers again there is nothing to do', () => {
  const dead = live(member(1), member(2), member(3, { healthy: false }));
  assert.deepEqual(texts(dead, [1, 2, 3], { replace: 'pg3' }), [
    'etcd: remove the old member pg3 (its machine was rebuilt; it does not answer)',
    'etcd: add pg3 as a learner, start it with ETCD_INITIAL_CLUSTER_STATE=existing, promote it to a voting member',
  ]);
  assert.deepEqual(plan(live(member(1), member(2), member(3)), [1, 2, 3], { replace: 'pg3' }), []);
});

test('an interrupted join is finished: a learner promoted, a member added but never started is started', () => {
  const learner = live(member(1), member(2), member(3), member(4, { learner: true }));
  assert.deepEqual(texts(learner, [1, 2, 3, 4]), ['etcd: pg4 (added earlier as a learner) started with ETCD_INITIAL_CLUSTER_STATE=existing and promoted to a voting member']);
  const unstarted = live(member(1), member(2), member(3), member(4, { name: '', healthy: false }));
  assert.deepEqual(texts(unstarted, [1, 2, 3, 4], { learners: false }), ['etcd: pg4 (added earlier) started with ETCD_INITIAL_CLUSTER_STATE=existing']);
});

test('a member that is not an inventory host: removed without contact when down, refused when it answers', () => {
  const gone = live(member(1), member(2), member(3), { ...member(9), name: 'old9', healthy: false });
  assert.deepEqual(texts(gone, [1, 2, 3]), ['etcd: remove member old9, which does not answer (not an inventory host: its machine is not contacted)']);
  const alive = live(member(1), member(2), member(3), { ...member(9), name: 'old9' });
  assert.throws(() => plan(alive, [1, 2, 3]), /etcd member old9 answers but is not an inventory host: pgha cannot stop it/);
});

test('a member renamed under the same peer URL is refused (etcd would not start under the new name)', () => {
  assert.throws(() => plan(live(member(1), member(2), { ...member(3), name: 'old3' }), [1, 2, 3]), /etcd member old3 has the peer URL http:\/\/10\.1\.0\.3:2380, which the inventory gives to pg3/);
});

test('ETCD_INITIAL_CLUSTER of a joining member: every started member, and itself', () => {
  const members = [member(1), member(2), member(4, { name: '', learner: true })];
  assert.equal(joinInitialCluster(members, target(4)), 'pg1=http://10.1.0.1:2380,pg2=http://10.1.0.2:2380,pg4=http://10.1.0.4:2380');
});
