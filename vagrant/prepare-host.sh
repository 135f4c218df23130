#!/bin/sh
# Prepares a Debian 12 host for pgha's labs: an unprivileged admin user that logs in with the
# lab's key and has passwordless sudo, and an /etc/hosts that names every lab machine.
# Shared by the container lab (test/lab/, run in each machine's root file system) and the
# Vagrant lab (vagrant/Vagrantfile, as the VMs' provisioner), so the two never drift.
#
# Usage: prepare-host.sh USER PUBLIC_KEY NAME [OTHER_NAME=ADDRESS ...]
#   NAME is this host's own name (127.0.1.1 in /etc/hosts). Idempotent; runs as root.
set -eu
[ "$#" -ge 3 ] || { echo "usage: $0 USER PUBLIC_KEY NAME [OTHER_NAME=ADDRESS ...]" >&2; exit 2; }
user=$1
pubkey=$2
name=$3
shift 3
[ -n "$pubkey" ] || { echo "$0: empty public key" >&2; exit 2; }

# Without its own name in /etc/hosts every sudo waits on a DNS lookup that cannot succeed.
{
  echo "127.0.0.1 localhost"
  echo "127.0.1.1 $name"
  echo "::1 localhost ip6-localhost ip6-loopback"
  for entry in "$@"; do
    other=${entry%%=*}
    address=${entry#*=}
    [ "$other" = "$name" ] || echo "$address $other"
  done
} >/etc/hosts.pgha-new
mv /etc/hosts.pgha-new /etc/hosts
echo "$name" >/etc/hostname

id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
touch "$home/.ssh/authorized_keys"
grep -qxF "$pubkey" "$home/.ssh/authorized_keys" || echo "$pubkey" >>"$home/.ssh/authorized_keys"
chown "$user:$user" "$home/.ssh/authorized_keys"
chmod 0600 "$home/.ssh/authorized_keys"

sudoers=/etc/sudoers.d/90-pgha-$user
echo "$user ALL=(ALL) NOPASSWD:ALL" >"$sudoers.new"
chmod 0440 "$sudoers.new"
if command -v visudo >/dev/null 2>&1; then visudo -cqf "$sudoers.new"; fi
mv "$sudoers.new" "$sudoers"
