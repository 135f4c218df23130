// init's SSH test against a real sshd on loopback: the fingerprint shown is the one
// `ssh-keygen -lf` prints, and the login accepts only the confirmed key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint, keyTypeOf, sshProbe } from '../../../../src/flows/init/hostkeys.js';
import { NOPW_USER, SUDO_USER, keygenFingerprint, startSshd, type Sshd } from '../../ssh/sshd-fixture.js';

let sshd: Sshd;
before(async () => {
  sshd = await startSshd();
});
after(async () => {
  await sshd?.stop();
});

test('fetchKey returns the host key: the same SHA256 fingerprint as ssh-keygen -lf', async () => {
  const key = await sshProbe.fetchKey('127.0.0.1', sshd.port);
  assert.equal(keyTypeOf(key), 'ssh-ed25519');
  assert.equal(fingerprint(key), keygenFingerprint(sshd.hostKeyPub));
});

test('login works with the confirmed key and passwordless sudo, and fails otherwise', async () => {
  const key = await sshProbe.fetchKey('127.0.0.1', sshd.port);
  const base = { name: 'db-test', address: '127.0.0.1', port: sshd.port, user: SUDO_USER, privateKeyPath: sshd.userKey, key };
  await sshProbe.login(base);
  // Another key than the one the user confirmed: refused before authenticating.
  const wrong = Buffer.from(key);
  wrong[wrong.length - 1] ^= 1;
  await assert.rejects(sshProbe.login({ ...base, key: wrong }), /HOST KEY .* HAS CHANGED|host key/i);
  await assert.rejects(sshProbe.login({ ...base, privateKeyPath: sshd.otherKey }), /authentication failed/);
  await assert.rejects(sshProbe.login({ ...base, user: NOPW_USER }), /sudo/);
});
