// The cluster's one Debian release: supported releases, hosts on another system, and a cluster
// whose hosts run two releases (refused, exit 2, naming every host).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOsRelease } from '../../../../src/engine/facts.js';
import { clusterRelease, releaseNamed, releaseOf, RELEASES, ReleaseError } from '../../../../src/components/base/release.js';
import { EXIT } from '../../../../src/errors.js';

const os = (id: string, codename: string, pretty: string) => parseOsRelease(`ID=${id}\nVERSION_CODENAME=${codename}\nPRETTY_NAME="${pretty}"\n`);
const bookworm = os('debian', 'bookworm', 'Debian GNU/Linux 12 (bookworm)');
const trixie = os('debian', 'trixie', 'Debian GNU/Linux 13 (trixie)');

test('Debian 12 and 13 are supported; another Debian or another system is not', () => {
  assert.equal(releaseOf(bookworm), RELEASES.bookworm);
  assert.equal(releaseOf(trixie), RELEASES.trixie);
  assert.equal(releaseOf(os('debian', 'bullseye', 'Debian GNU/Linux 11 (bullseye)')), null);
  assert.equal(releaseOf(os('debian', 'forky', 'Debian GNU/Linux forky/sid')), null);
  assert.equal(releaseOf(os('ubuntu', 'noble', 'Ubuntu 24.04 LTS')), null);
  assert.deepEqual([RELEASES.bookworm.label, RELEASES.trixie.label], ['Debian 12 (bookworm)', 'Debian 13 (trixie)']);
});

test('one release on every host is the cluster release', () => {
  assert.equal(clusterRelease([['pg1', trixie], ['pg2', trixie], ['backup1', trixie]]), RELEASES.trixie);
  assert.equal(clusterRelease([['pg1', bookworm]]), RELEASES.bookworm);
});

test('two releases in one cluster are refused (exit 2), naming the hosts of each and the README section', () => {
  const hosts: [string, ReturnType<typeof parseOsRelease>][] = [['pg1', bookworm], ['pg2', trixie], ['pg3', bookworm], ['backup1', trixie]];
  assert.throws(
    () => clusterRelease(hosts),
    (err: unknown) => {
      assert.ok(err instanceof ReleaseError);
      assert.equal(err.exitCode, EXIT.badInput);
      assert.equal(
        err.message,
        'the hosts run different Debian releases: Debian 12 (bookworm) on pg1, pg3; Debian 13 (trixie) on pg2, backup1. A cluster runs one ' +
          'release (PostgreSQL, Patroni, etcd and pgBackRest versions follow from it); to move a cluster from Debian 12 to 13, see ' +
          '"From Debian 12 to Debian 13" in pgha\'s README',
      );
      return true;
    },
  );
});

test('a host on an unsupported system is refused (exit 2) with what it runs', () => {
  assert.throws(
    () => clusterRelease([['pg1', trixie], ['pg2', os('debian', 'bullseye', 'Debian GNU/Linux 11 (bullseye)')], ['pg3', os('ubuntu', 'noble', 'Ubuntu 24.04.1 LTS')]]),
    (err: unknown) =>
      err instanceof ReleaseError &&
      err.exitCode === EXIT.badInput &&
      err.message === 'pg2 runs Debian GNU/Linux 11 (bullseye); pg3 runs Ubuntu 24.04.1 LTS: pgha supports Debian 12 (bookworm) and Debian 13 (trixie)',
  );
});

test('releaseNamed: by codename or version number, any case', () => {
  assert.equal(releaseNamed('trixie'), RELEASES.trixie);
  assert.equal(releaseNamed('13'), RELEASES.trixie);
  assert.equal(releaseNamed(' Bookworm '), RELEASES.bookworm);
  assert.equal(releaseNamed('bullseye'), null);
});
