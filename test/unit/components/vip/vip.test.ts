// The virtual IP without a cluster: vip-manager's settings per member (the v2 leader key it
// follows, its poll interval, the unit drop-in that makes stopping it release the address),
// PostgreSQL listening on every address, the refusals (the etcd3 DCS, a scheduled switchover) and
// the inventory's located errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { renderHost } from '../../../../src/components/index.js';
import { vipDcsProblem } from '../../../../src/components/vip/index.js';
import { InputError } from '../../../../src/errors.js';
import { planSwitchover } from '../../../../src/cluster/leader-change.js';
import type { Session } from '../../../../src/session/session.js';
import { loadWith } from '../inventory-with.js';

const load = (extra: string) => loadWith(extra);

test("vip-manager follows the leader key of etcd's v2 store for its own member; PostgreSQL listens everywhere", async () => {
  const { inv, lines } = await load('vip: {address: 10.1.0.100, interface: eth0}\n');
  assert.deepEqual(lines, []);
  const files = renderHost(inv!, 'pg2', { dcs: 'etcd' });
  const settings = files.find((f) => f.path === '/etc/default/vip-manager')!.content;
  for (const line of ['VIP_IP="10.1.0.100"', 'VIP_MASK=24', 'VIP_IFACE="eth0"', 'VIP_KEY="/service/t/leader"', 'VIP_HOST="pg2"', 'VIP_TYPE="etcd"', 'VIP_ENDPOINT="https://10.1.0.1:2379,https://10.1.0.2:2379,https://10.1.0.3:2379"', 'VIP_INTERVAL=250',
    // TLS (the default): etcd's certificate checked, the host's client certificate presented.
    'VIP_ETCD_CA_FILE="/etc/pgha/tls/ca.crt"', 'VIP_ETCD_CERT_FILE="/etc/pgha/tls/postgres.crt"', 'VIP_ETCD_KEY_FILE="/etc/pgha/tls/postgres.key"']) {
    assert.ok(settings.split('\n').includes(line), `missing ${line}`);
  }
  // Stopping vip-manager releases the address: SIGINT is the one signal 1.0.2 cleans up on, and ExecStopPost deletes it anyway.
  const dropin = files.find((f) => f.path === '/etc/systemd/system/vip-manager.service.d/pgha.conf')!.content;
  assert.deepEqual(dropin.split('\n').filter((l) => l && !l.startsWith('#')), ['[Service]', 'KillSignal=SIGINT', 'TimeoutStopSec=5', 'ExecStopPost=-/usr/sbin/ip addr del 10.1.0.100/24 dev eth0']);
  const patroni = parse(files.find((f) => f.path === '/etc/patroni/config.yml')!.content).postgresql;
  assert.equal(patroni.listen, '*:5432');
  // Patroni then connects to "localhost", which may resolve to ::1.
  assert.ok(patroni.pg_hba.includes('hostssl all postgres ::1/128 scram-sha-256') && patroni.pg_hba.includes('hostssl replication replicator ::1/128 scram-sha-256'));
  assert.equal(vipDcsProblem(inv!, 'etcd'), null);
  assert.match(vipDcsProblem(inv!, 'etcd3')!, /follows only etcd's v2 API/);
  // Without vip: no vip-manager, PostgreSQL on the host's address and localhost.
  const off = renderHost((await load('')).inv!, 'pg2', { dcs: 'etcd' });
  assert.ok(!off.some((f) => f.component === 'vip'));
  assert.equal(parse(off.find((f) => f.path === '/etc/patroni/config.yml')!.content).postgresql.listen, '10.1.0.2,127.0.0.1:5432');
});

test('bad VIPs: located', async () => {
  assert.deepEqual((await load('vip: {address: 10.1.0.2, interface: eth0}\n')).lines, ['inv.yml:20:16: vip.address: 10.1.0.2 is the address of pg2, expected an unused address']);
  assert.deepEqual((await load('vip: {address: vip.example.com, interface: "eth 0", prefix: 33}\n')).lines, [
    'inv.yml:20:16: vip.address: got "vip.example.com", not an IP address, expected an unused IPv4 or IPv6 address on the database hosts\' network',
    'inv.yml:20:44: vip.interface: got "eth 0", expected a network interface name (e.g. eth0)',
  ]);
  assert.deepEqual((await load('vip: {address: 10.1.0.100, interface: eth0, prefix: 33}\n')).lines, ['inv.yml:20:53: vip.prefix: 33 is longer than an IPv4 address, expected 1-32']);
  assert.deepEqual((await load('vip: {address: 10.1.0.100}\n')).lines, ['inv.yml:20:1: vip.interface: required key missing, expected a string']);
});

test('pgha switchover --at is refused with a VIP (exit 2), before any host is asked', async () => {
  const { inv } = await load('vip: {address: 10.1.0.100, interface: eth0}\n');
  // No connection at all: the refusal must come first.
  const session = { inv } as unknown as Session;
  await assert.rejects(planSwitchover(session, undefined, new Date(Date.now() + 3_600_000)), (err: unknown) => {
    assert.ok(err instanceof InputError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /^--at: with vip: pgha releases the VIP on the old leader before the leader key moves/);
    return true;
  });
});
