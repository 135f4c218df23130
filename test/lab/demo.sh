#!/usr/bin/env bash
# The quick start: a verified PostgreSQL HA cluster on the container lab, in one command.
# Installs what it needs (Debian packages for the lab, npm packages), boots the lab's four
# Debian 12 machines, runs `pgha apply` on inventories/lab.yml, then `pgha status`.
# Run as root on Debian 12 (the lab uses systemd-nspawn). Stop it all with: npm run lab -- down
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x node_modules/.bin/tsx ]; then
  npm ci --no-audit --no-fund
fi
npm run -s build
npm run -s lab -- up
inventory=$(npm run -s lab -- inventory)
npx pgha apply -i "$inventory"
# status exits 1 (degraded) or 2 (down) when something is wrong: show it, and pass the code on.
npx pgha status -i "$inventory"
