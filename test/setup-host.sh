#!/usr/bin/env bash
# Installs the Debian packages the test suite and the lab need on the host (idempotent).
# The lab (test/lab/) needs systemd-container (systemd-nspawn), debootstrap (its base image),
# apt-cacher-ng (its machines' only way to Debian's packages), iproute2 and openssh-client;
# nftables and iptables shape a machine's link for the degraded-network verbs (netem: loss with nft,
# delay through an NFQUEUE of iptables-legacy); ruby checks the
# Vagrantfile (test/vagrant.test.ts); bsdutils' `script` gives the confirmation-prompt tests a terminal;
# python3 holds fcntl locks as apt does (the apt-lock tests in test/unit/engine.test.ts); prometheus
# ships promtool, which checks and unit-tests the alert rules pgha writes (test/cluster/apps.test.ts).
set -euo pipefail
need=(haproxy systemd-container debootstrap apt-cacher-ng iproute2 nftables iptables ruby openssh-server openssh-client sudo tmux bsdutils python3 prometheus)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs may run apt on the same host: wait for its lock instead of failing. apt's
  # DPkg::Lock::Timeout covers the dpkg locks, not the lists lock `update` takes: wait here (5 min).
  for try in $(seq 60); do
    if out=$(apt-get -o DPkg::Lock::Timeout=300 update -qq 2>&1); then break; fi
    if ! grep -q 'Could not get lock' <<<"$out" || ((try == 60)); then echo "$out" >&2; exit 1; fi
    sleep 5
  done
  # No daemon is started on the host by a package's install (there is no init system to own it).
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
