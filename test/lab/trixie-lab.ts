// The lab of test/cluster/trixie.test.ts: Debian 13 machines in a lab of their own (dir, bridge,
// subnet: PGHA_TRIXIE_LAB_DIR, _BRIDGE, _SUBNET, or the defaults below), so the default Debian 12
// lab stays as it is. The lab reads its settings from the environment at every call.
export function useTrixieLab(): void {
  process.env.PGHA_LAB_RELEASE = 'trixie';
  process.env.PGHA_LAB_DIR = process.env.PGHA_TRIXIE_LAB_DIR || '/var/lib/pgha-lab-trixie';
  process.env.PGHA_LAB_BRIDGE = process.env.PGHA_TRIXIE_LAB_BRIDGE || 'pghabr13';
  process.env.PGHA_LAB_SUBNET = process.env.PGHA_TRIXIE_LAB_SUBNET || '10.88.113.0/24';
}
