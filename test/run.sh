#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian 12 machine (as root):
# installs what it needs (Debian packages, npm ci), type-checks, then runs every test file
# with node's test runner. Lab tests boot real Debian 12 machines (systemd-nspawn).
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/setup-host.sh
npm ci --no-audit --no-fund
npx tsc --noEmit

# Listed explicitly (node 20 does not expand globs itself). Files run one at a time (the lab
# tests share the lab's machines), in the order of their names: every lab test file sets up the
# state it needs itself (ensureCluster, or a fresh lab).
files=(
  test/unit/cli.test.ts
  test/unit/inventory.test.ts
  test/unit/hostile.test.ts
  test/unit/calendar.test.ts
  test/unit/render.test.ts
  test/unit/secrets.test.ts
  test/unit/archive-push.test.ts
  test/unit/init.test.ts
  test/unit/ssh.test.ts
  test/unit/engine.test.ts
  test/unit/apply.test.ts
  test/unit/backup.test.ts
  test/unit/checker.test.ts
  test/unit/status.test.ts
  test/init.test.ts
  test/init-ssh.test.ts
  test/ssh/ssh.test.ts
  test/ssh/engine.test.ts
  test/vagrant.test.ts
  test/lab/lab.test.ts
  test/cluster/apply.test.ts
  test/cluster/status.test.ts
  test/cluster/switchover.test.ts
  test/cluster/backup.test.ts
  test/cluster/faults.test.ts
)

node --import tsx --test --test-reporter=tap --test-concurrency=1 "${files[@]}"
