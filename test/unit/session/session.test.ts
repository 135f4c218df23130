// How a host is reached: the inventory's SSH settings first, then ~/.ssh/config's, then the
// defaults; jump hosts from ssh.jump (global, per host, or none) or ProxyJump.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadInventory } from '../../../src/inventory/index.js';
import { defaultKeyPaths, hostTarget, jumpHops } from '../../../src/session/session.js';
import { parseJump } from '../../../src/ssh/jump.js';

const HOSTS = `hosts:
  pg1: {address: 10.1.0.1}
  pg2: {address: 10.1.0.2, ssh: {user: pguser, jump: none}}
  pg3: {address: 10.1.0.3, ssh: {jump: "ops@10.1.9.9:2200"}}
  bk: {address: 10.1.0.9}
roles: {etcd: [pg1, pg2, pg3], postgres: [pg1, pg2, pg3], haproxy: [pg1, pg2, pg3], backup_repository: bk}
`;

/** An inventory (and its ssh config, `DIR` standing for their directory) in a new directory. */
async function inventory(ssh: string, config: string | null) {
  const dir = mkdtempSync(join(tmpdir(), 'pgha-session-'));
  if (config !== null) writeFileSync(join(dir, 'ssh_config'), config.replace(/DIR/g, dir));
  writeFileSync(join(dir, 'id_cfg'), 'not read here\n');
  const file = join(dir, 'inv.yml');
  writeFileSync(file, `cluster: {name: t}\nssh:\n  config_file: ${config === null ? 'null' : 'ssh_config'}\n${ssh}${HOSTS}`);
  return { inv: await loadInventory(file, { secrets: false }), dir };
}

test('without inventory values or a config file: root, port 22, the agent, then ~/.ssh/id_*', async () => {
  const { inv } = await inventory('', null);
  const t = hostTarget(inv.host('pg1'), { SSH_AUTH_SOCK: '/run/agent.sock' });
  assert.equal(t.user, 'root');
  assert.equal(t.port, 22);
  assert.equal(t.address, '10.1.0.1');
  assert.equal(t.privateKeyPath, '');
  assert.equal(t.agentSocket, '/run/agent.sock');
  assert.deepEqual(t.defaultKeyPaths, ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f)));
  assert.deepEqual(t.jump, []);
  assert.equal(hostTarget(inv.host('pg1'), {}).agentSocket, undefined);
});

test('~/.ssh/config fills HostName, User, Port, IdentityFile and ProxyJump; the inventory wins', async () => {
  const config = [
    'Host jumpbox',
    '  HostName 10.1.9.1',
    '  User jumper',
    '  Port 2022',
    'Host pg1',
    '  HostName 192.0.2.11',
    'Host pg*',
    '  User alice',
    '  Port 2222',
    '  ProxyJump jumpbox',
    'Host 10.1.0.9',
    '  IdentityFile %d/no-such-key',
    '  IdentityFile DIR/id_cfg',
    'Host *',
    '  User fallback',
    '',
  ].join('\n');
  const { inv: inv2, dir } = await inventory('  port: 22\n', config);
  const pg1 = hostTarget(inv2.host('pg1'), {});
  assert.equal(pg1.address, '192.0.2.11', 'HostName changes where SSH connects');
  assert.equal(inv2.host('pg1').address, '10.1.0.1', 'the cluster keeps the inventory address');
  assert.equal(pg1.user, 'alice');
  assert.equal(pg1.port, 22, 'the inventory port wins over the config');
  assert.deepEqual(pg1.jump, [{ user: 'jumper', address: '10.1.9.1', port: 2022 }]);
  const pg2 = hostTarget(inv2.host('pg2'), {});
  assert.equal(pg2.user, 'pguser', 'the per-host inventory user wins');
  assert.deepEqual(pg2.jump, [], 'jump: none wins over ProxyJump');
  const pg3 = hostTarget(inv2.host('pg3'), {});
  assert.deepEqual(pg3.jump, [{ user: 'ops', address: '10.1.9.9', port: 2200 }]);
  const bk = hostTarget(inv2.host('bk'), {});
  assert.equal(bk.user, 'fallback');
  assert.deepEqual(bk.defaultKeyPaths, [join(dir, 'id_cfg')], 'IdentityFiles that exist, tried after the agent');
  assert.deepEqual(bk.jump, []);
});

test('config_file: null reads no ssh config', async () => {
  const { inv } = await inventory('', null);
  assert.equal(inv.host('pg1').ssh.configFile, null);
});

test('jump specs: ProxyJump syntax, several hops, IPv6, none; bad ones are refused by validate', async () => {
  assert.deepEqual(parseJump('admin@bastion.example.com:2222'), [{ user: 'admin', host: 'bastion.example.com', port: 2222 }]);
  assert.deepEqual(parseJump('a@[2001:db8::1]:22,b.example'), [{ user: 'a', host: '2001:db8::1', port: 22 }, { host: 'b.example' }]);
  assert.deepEqual(parseJump('ssh://ops@10.0.0.1'), [{ user: 'ops', host: '10.0.0.1' }]);
  assert.equal(parseJump('none'), 'none');
  assert.deepEqual(parseJump('a@b,c d'), { problem: '"c d" is not a jump host, expected [user@]host[:port], several comma-separated, or none' });
  assert.deepEqual(parseJump('a@b:99999'), { problem: 'port 99999 is not 1-65535, expected [user@]host[:port], several comma-separated, or none' });
  assert.deepEqual(jumpHops('10.0.0.1', null), [{ user: userInfo().username, address: '10.0.0.1', port: 22 }]);
  assert.ok(defaultKeyPaths('/h').every((p) => p.startsWith('/h/.ssh/id_')));

  const dir = mkdtempSync(join(tmpdir(), 'pgha-session-'));
  const file = join(dir, 'inv.yml');
  writeFileSync(file, `cluster: {name: t}\nssh:\n  jump: "admin@bad host"\n${HOSTS}`);
  await assert.rejects(loadInventory(file, { secrets: false }), (err: Error & { lines?: string[] }) => {
    assert.deepEqual(err.lines, [`${file}:3:9: ssh.jump: got "admin@bad host", not a jump host, expected [user@]host[:port], several comma-separated, or none`]);
    return true;
  });
});
