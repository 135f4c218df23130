// etcd's state fact: the one curl that asks every member over etcd's JSON gateway, and its parser
// on answers as etcd 3.4 (Debian 12) and 3.5 (Debian 13) give them, failures included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdProblem, etcdStateCommand, parseEtcdState } from '../../../../src/components/etcd/state.js';
import { loadWith } from '../inventory-with.js';

const inventory = async (extra = '') => (await loadWith(extra)).inv!;

// Ids above 2^53: a JSON number would lose their last digits.
const ID = { pg1: '10158209152051976105', pg2: '13357049747754637626', pg3: '9372538179322589801' };
const status = (self: string, leader: string) =>
  `{"header":{"cluster_id":"6837994974889556568","member_id":"${self}","revision":"8","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"${leader}","raftIndex":"12","raftTerm":"2"}`;
const line = (i: number, code: number, exit = 0, error = '') => `\n@@etcd ${i} ${String(code).padStart(3, '0')} ${exit} ${error}\n`;

test('etcd state command: one curl, per member GET /health then POST /v3/maintenance/status, with the member certificate over TLS, as etcd', async () => {
  const inv = await inventory();
  const { cmd, user, sudo } = etcdStateCommand(inv);
  assert.equal(cmd[0], 'curl');
  assert.equal(cmd.filter((a) => a === 'curl').length, 1);
  const urls = cmd.filter((a) => /^https?:\/\//.test(a));
  assert.deepEqual(urls, [
    'https://10.1.0.1:2379/health',
    'https://10.1.0.1:2379/v3/maintenance/status',
    'https://10.1.0.2:2379/health',
    'https://10.1.0.2:2379/v3/maintenance/status',
    'https://10.1.0.3:2379/health',
    'https://10.1.0.3:2379/v3/maintenance/status',
  ]);
  assert.equal(cmd.filter((a) => a === '--next').length, 5);
  assert.equal(cmd.filter((a) => a === '--cert').length, 6);
  assert.ok(cmd.includes('/etc/pgha/tls/etcd.key'));
  assert.equal(cmd.filter((a) => a === 'POST').length, 3);
  assert.equal(user, 'etcd');
  assert.equal(sudo, undefined);
  // Each answer's line names its own number.
  assert.ok(cmd.includes('\\n@@etcd 5 %{http_code} %{exitcode} %{errormsg}\\n'));

  const plain = etcdStateCommand(await inventory('tls:\n  enabled: false\n'));
  assert.ok(!plain.cmd.includes('--cert'));
  assert.ok(plain.cmd.includes('http://10.1.0.2:2379/health'));
  assert.deepEqual([plain.user, plain.sudo], [undefined, false]);
});

test('etcd state: health and leader by member, 64-bit ids exact; 3.5 health with its reason', async () => {
  const inv = await inventory();
  const out =
    '{"health":"true"}' + line(0, 200) + status(ID.pg1, ID.pg2) + line(1, 200) +
    '{"health":"true","reason":""}' + line(2, 200) + status(ID.pg2, ID.pg2) + line(3, 200) +
    '{"health":"true"}' + line(4, 200) + status(ID.pg3, ID.pg2) + line(5, 200);
  const members = parseEtcdState(inv, out);
  assert.deepEqual(
    members.map((m) => [m.name, m.endpoint, m.healthy, m.leader, m.error]),
    [
      ['pg1', 'https://10.1.0.1:2379', true, false, undefined],
      ['pg2', 'https://10.1.0.2:2379', true, true, undefined],
      ['pg3', 'https://10.1.0.3:2379', true, false, undefined],
    ],
  );
  assert.equal(etcdProblem(members), true);
  // pg1 told of a leader whose id differs from its own in the last digit only (equal as JSON numbers): not pg1.
  const near = parseEtcdState(inv, out.replace(status(ID.pg1, ID.pg2), status(ID.pg1, '10158209152051976106')));
  assert.equal(Number('10158209152051976106'), Number(ID.pg1));
  assert.deepEqual(near.map((m) => m.leader), [false, true, false]);
});

test('etcd state: a member that cannot be reached, one without a leader, one that answers nothing: unhealthy with why', async () => {
  const inv = await inventory();
  const out =
    '{"health":"true"}' + line(0, 200) + status(ID.pg1, ID.pg1) + line(1, 200) +
    line(2, 0, 28, 'Connection timed out after 2001 milliseconds') + line(3, 0, 28, 'Connection timed out after 2000 milliseconds') +
    '{"health":"false","reason":"RAFT NO LEADER"}' + line(4, 503) + status(ID.pg3, '0') + line(5, 200);
  const members = parseEtcdState(inv, out);
  assert.deepEqual(
    members.map((m) => [m.name, m.healthy, m.leader, m.error]),
    [
      ['pg1', true, true, undefined],
      ['pg2', false, false, 'Connection timed out after 2001 milliseconds'],
      ['pg3', false, false, 'RAFT NO LEADER'],
    ],
  );
  assert.equal(etcdProblem(members), 'unhealthy member(s): pg2: Connection timed out after 2001 milliseconds; pg3: RAFT NO LEADER');
  // etcd 3.4 says only "false" (HTTP 503); curl stopped before the last member: no answer.
  const cut = parseEtcdState(inv, '{"health":"false"}' + line(0, 503) + status(ID.pg1, '0') + line(1, 200) + '{"health":"true"}' + line(2, 200));
  assert.deepEqual(
    cut.map((m) => [m.name, m.healthy, m.error]),
    [
      ['pg1', false, 'HTTP 503: {"health":"false"}'],
      ['pg2', true, undefined],
      ['pg3', false, 'no answer'],
    ],
  );
  assert.equal(etcdProblem(parseEtcdState(inv, '')), 'unhealthy member(s): pg1: no answer; pg2: no answer; pg3: no answer');
});
