// The host facts' pure parsers, from real files: /etc/os-release of Debian 12 and 13 (the lab's
// machines), and the shapes os-release(5) allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOsRelease, parseServiceShow } from '../../../src/engine/facts.js';

const BOOKWORM = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

const TRIXIE = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.8
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

test('os-release of Debian 12 and 13: id, codename, version, pretty name', () => {
  assert.deepEqual(parseOsRelease(BOOKWORM), { id: 'debian', codename: 'bookworm', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
  assert.deepEqual(parseOsRelease(TRIXIE), { id: 'debian', codename: 'trixie', versionId: '13', prettyName: 'Debian GNU/Linux 13 (trixie)' });
});

test("os-release: single quotes, escapes inside double quotes, comments and blank lines; what is missing is ''", () => {
  const text = "# a comment\n\nID='ubuntu'\nPRETTY_NAME=\"Ubuntu \\\"Noble\\\" \\$HOME\"\nVERSION_CODENAME=noble\n";
  assert.deepEqual(parseOsRelease(text), { id: 'ubuntu', codename: 'noble', versionId: '', prettyName: 'Ubuntu "Noble" $HOME' });
  // A testing image has no codename yet; no PRETTY_NAME falls back to NAME, nothing at all to a phrase.
  assert.deepEqual(parseOsRelease('ID=debian\nNAME="Debian GNU/Linux"\n'), { id: 'debian', codename: '', versionId: '', prettyName: 'Debian GNU/Linux' });
  assert.equal(parseOsRelease('').prettyName, 'an unknown system');
});

// `systemctl show -p ActiveState -p UnitFileState -- patroni etcd haproxy ssh` on the lab's backup host
// (no PostgreSQL, etcd or HAProxy there: their units do not exist).
const SHOW = 'ActiveState=inactive\nUnitFileState=\n\nActiveState=inactive\nUnitFileState=\n\nActiveState=inactive\nUnitFileState=\n\nActiveState=active\nUnitFileState=enabled\n';

test('services from one systemctl show: is-active and is-enabled words, in the order asked; no unit file is not-found', () => {
  const m = parseServiceShow(SHOW, ['patroni', 'etcd', 'haproxy', 'ssh']);
  assert.deepEqual([...m.entries()], [
    ['patroni', { active: 'inactive', enabled: 'not-found' }],
    ['etcd', { active: 'inactive', enabled: 'not-found' }],
    ['haproxy', { active: 'inactive', enabled: 'not-found' }],
    ['ssh', { active: 'active', enabled: 'enabled' }],
  ]);
  // Masked, static and failed units keep systemctl's own words; no answer at all reads as unknown.
  const other = parseServiceShow('ActiveState=failed\nUnitFileState=masked\n\nActiveState=activating\nUnitFileState=static\n', ['a', 'b', 'c']);
  assert.deepEqual([...other.values()], [
    { active: 'failed', enabled: 'masked' },
    { active: 'activating', enabled: 'static' },
    { active: 'unknown', enabled: 'not-found' },
  ]);
});
