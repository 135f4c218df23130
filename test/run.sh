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
# test/lab (the lab itself) and test/cluster (real clusters). Files run one at a time (the lab
# tests share the lab's machines), in the order of their names: every lab test file sets up the
# state it needs itself (ensureCluster, or a fresh lab).
files=(
  test/unit/cli/cli.test.ts
  test/unit/cli/context.test.ts
  test/unit/cli/quick-status.test.ts
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
  test/unit/components/pgbackrest/check-args.test.ts
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
  test/unit/flows/status-gather.test.ts
  test/unit/flows/status-asker.test.ts
  test/unit/ssh/ssh.test.ts
  test/unit/ssh/known-hosts.test.ts
  test/unit/ssh/connection.test.ts
  test/unit/ssh/auth.test.ts
  test/unit/ssh/keeper.test.ts
  test/unit/ssh/root-shell.test.ts
  test/unit/ssh/kept-psql.test.ts
  test/unit/ssh/forwarded-http.test.ts
  test/unit/session/session.test.ts
  test/unit/session/remote.test.ts
  test/unit/engine/engine.test.ts
  test/unit/engine/engine-ssh.test.ts
  test/unit/engine/facts.test.ts
  test/unit/vagrant/vagrant.test.ts
  test/faults/checker.test.ts
  test/chaos/plan.test.ts
  test/lab/lab.test.ts
  # In the order node runs them (by name). Each sets up what it needs: apply.test.ts deploys from
  # fresh machines, the rest reuse its verified cluster (ensureCluster) or boot fresh machines of
  # their own (day2; tls, whose first deploy is faults' scenario 7); chaos.test.ts is where the
  # default profile meets every fault of the suite (a 5-minute seeded soak); trixie.test.ts runs
  # Debian 13 on a lab of its own (its own dir, bridge and subnet), taken down at the end.
  test/cluster/apply.test.ts
  test/cluster/apps.test.ts
  test/cluster/apt-stall.test.ts
  test/cluster/backup.test.ts
  test/cluster/chaos.test.ts
  test/cluster/day2.test.ts
  test/cluster/degraded.test.ts
  test/cluster/disk.test.ts
  test/cluster/errors.test.ts
  test/cluster/faults.test.ts
  test/cluster/primary-port.test.ts
  test/cluster/ssh-access.test.ts
  test/cluster/status.test.ts
  test/cluster/switchover.test.ts
  test/cluster/tls.test.ts
  test/cluster/topology.test.ts
  test/cluster/trixie.test.ts
)

# The lab tests run the CLI as installed (bin/pgha.js over dist/, which `npm ci` has just built
# from this tree): from source, tsx would cost every one of their pgha calls about 0.4 s of CPU.
export PGHA_TEST_BUILT=1

rc=0
node --import tsx --test --test-reporter=tap --test-concurrency=1 "${files[@]}" || rc=$?
wait "$base" || { echo "# the background build of the lab's base images failed (the tests built what they needed):"; sed 's/^/# /' "$base_log"; }
exit "$rc"
