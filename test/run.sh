#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian 12 machine (as root):
# installs what it needs (Debian packages, npm ci), type-checks, then runs every test file
# with node's test runner. Lab tests boot real Debian 12 machines (systemd-nspawn), and
# test/cluster/trixie.test.ts Debian 13 ones.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/setup-host.sh
npm ci --no-audit --no-fund

# The lab's base images (debootstrap of Debian 12, and of Debian 13 for trixie.test.ts), when
# missing, are built in the background from here on: beside the type-check, then beside the first
# lab tests. A lab test that boots machines before its image is ready waits for it (the image's
# lock, test/lab/lab.ts); one that failed to build is built again by the test that needs it.
base_log=$(mktemp)
setsid bash -c 'npx tsx test/lab/cli.ts base && npx tsx test/lab/cli.ts base trixie-lab' >"$base_log" 2>&1 &
base=$!
trap 'kill -- "-$base" 2>/dev/null || true; rm -f "$base_log"' EXIT

npx tsc --noEmit

# Listed explicitly (node 20 does not expand globs itself). Unit tests mirror the tree they test
# (src/X/Y.ts -> test/unit/X/Y.test.ts; a test tool's own test sits beside it); lab tests are in
# test/lab (the lab itself) and test/cluster (real clusters).
units=(
  test/unit/cli/cli.test.ts
  test/unit/cli/context.test.ts
  test/unit/cli/runlog.test.ts
  test/unit/cli/completion.test.ts
  test/unit/cli/package.test.ts
  test/unit/inventory/inventory.test.ts
  test/unit/inventory/hostile.test.ts
  test/unit/inventory/calendar.test.ts
  test/unit/components/render.test.ts
  test/unit/components/haproxy/runtime.test.ts
  test/unit/components/secrets.test.ts
  test/unit/components/components.test.ts
  test/unit/components/base/release.test.ts
  test/unit/components/patroni/timing.test.ts
  test/unit/components/pgbackrest/archive-push.test.ts
  test/unit/components/pgbackrest/record.test.ts
  test/unit/components/etcd/index.test.ts
  test/unit/components/etcd/membership.test.ts
  test/unit/components/etcd/state.test.ts
  test/unit/components/patroni/members.test.ts
  test/unit/cluster/topology.test.ts
  test/unit/components/base/apt.test.ts
  test/unit/cluster/preflight.test.ts
  test/unit/cluster/roll.test.ts
  test/unit/cluster/upgrade-plan.test.ts
  test/unit/components/tls/ca.test.ts
  test/unit/components/tls/facts.test.ts
  test/unit/cluster/tls-conversion.test.ts
  test/unit/components/databases/sql.test.ts
  test/unit/components/notifications/notify.test.ts
  test/unit/components/monitoring/prometheus.test.ts
  test/unit/components/vip/vip.test.ts
  test/unit/components/pgbouncer/pgbouncer.test.ts
  test/unit/flows/init/flags.test.ts
  test/unit/flows/init/wizard.test.ts
  test/unit/flows/init/hostkeys.test.ts
  test/unit/flows/backup.test.ts
  test/unit/flows/status.test.ts
  test/unit/ssh/ssh.test.ts
  test/unit/ssh/known-hosts.test.ts
  test/unit/ssh/connection.test.ts
  test/unit/ssh/auth.test.ts
  test/unit/ssh/keeper.test.ts
  test/unit/session/session.test.ts
  test/unit/session/remote.test.ts
  test/unit/engine/engine.test.ts
  test/unit/engine/engine-ssh.test.ts
  test/unit/engine/facts.test.ts
  test/unit/vagrant/vagrant.test.ts
  test/faults/checker.test.ts
  test/chaos/plan.test.ts
  test/lab/lab.test.ts
)
# Two streams of lab tests, side by side, each on labs of its own (machines, bridge, subnet, apt
# proxy), each running its files one at a time in the order given. Every lab test file sets up
# the state it needs itself (ensureCluster, or fresh machines), so either stream can run alone.
# The first uses the default Debian 12 lab: apply.test.ts deploys from fresh machines, the rest
# reuse its verified cluster (ensureCluster); chaos.test.ts is where the default profile meets
# every fault of the suite (a 5-minute seeded soak).
first=(
  test/cluster/apply.test.ts
  test/cluster/apps.test.ts
  test/cluster/apt-stall.test.ts
  test/cluster/backup.test.ts
  test/cluster/chaos.test.ts
  test/cluster/degraded.test.ts
  test/cluster/disk.test.ts
  test/cluster/errors.test.ts
  test/cluster/faults.test.ts
  test/cluster/primary-port.test.ts
  test/cluster/ssh-access.test.ts
  test/cluster/status.test.ts
  test/cluster/switchover.test.ts
)
# The second: the unit tests, then the files that start from fresh machines or grow the lab:
# trixie.test.ts on a Debian 13 lab of its own (taken down at the end), then day2.test.ts (fresh
# machines on older package versions), tls.test.ts (fresh machines in clear text, moved to TLS)
# and topology.test.ts (the verified cluster tls.test.ts leaves, and a fifth machine) on a second
# Debian 12 lab (SECOND_LAB) that shares the first one's base image.
second=(
  test/cluster/trixie.test.ts
  test/cluster/day2.test.ts
  test/cluster/tls.test.ts
  test/cluster/topology.test.ts
)
SECOND_LAB=(PGHA_LAB_DIR=/var/lib/pgha-lab-b PGHA_LAB_BRIDGE=pghabr2 PGHA_LAB_SUBNET=10.88.214.0/24 PGHA_LAB_BASE_DIR=/var/lib/pgha-lab)

# The lab tests run the CLI as installed (bin/pgha.js over dist/, which `npm ci` has just built
# from this tree): from source, tsx would cost every one of their pgha calls about 0.4 s of CPU.
export PGHA_TEST_BUILT=1
runner=(node --import tsx --test --test-reporter=tap --test-concurrency=1)

# The second stream's report is printed after the first's (two TAP documents, one after the
# other); the exit code is 0 only if both passed.
second_out=$(mktemp)
trap 'kill -- "-$base" 2>/dev/null || true; rm -f "$base_log" "$second_out"' EXIT
env "${SECOND_LAB[@]}" "${runner[@]}" "${units[@]}" "${second[@]}" >"$second_out" 2>&1 &
second_pid=$!
rc=0
"${runner[@]}" "${first[@]}" || rc=$?
rc2=0
wait "$second_pid" || rc2=$?
echo "# the second stream of test files (unit tests; Debian 13; day 2, TLS and topology on the second Debian 12 lab):"
cat "$second_out"
[ "$rc2" -eq 0 ] || rc=$rc2
wait "$base" || { echo "# the background build of the lab's base images failed (the tests built what they needed):"; sed 's/^/# /' "$base_log"; }
exit "$rc"
