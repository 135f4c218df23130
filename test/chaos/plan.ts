// The chaos soak's fault sequence: a pure function of the seed (mulberry32), so a failing soak
// can be replayed exactly with the seed it printed. Each step draws a fault kind, a target (an
// index into the replicas, for the faults aimed at one) and a pause after recovery, always the
// same three draws, so the sequence never depends on what happened on the cluster.

/** The fault suite's faults the soak injects (test/faults/suite.ts). */
export const FAULT_KINDS = [
  'partition leader',
  'power off leader',
  'kill -9 postmaster',
  'kill -9 Patroni',
  'partition replica',
  'switchover',
  'etcd quorum loss',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults aimed at one replica (the target picks it); the others hit the leader of the moment. */
export const REPLICA_TARGETED: ReadonlySet<FaultKind> = new Set<FaultKind>(['partition replica', 'switchover']);

export interface PlannedFault {
  kind: FaultKind;
  /** Index into the replicas in inventory order (modulo their number), for REPLICA_TARGETED kinds. */
  target: number;
  /** Seconds of quiet after the cluster is healthy again, before the next fault. */
  pauseS: number;
}

export interface PauseRange {
  minS: number;
  maxS: number;
}

export const DEFAULT_PAUSE: PauseRange = { minS: 5, maxS: 20 };

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The endless fault sequence of a seed. */
export function* faultPlan(seed: number, pause: PauseRange = DEFAULT_PAUSE): Generator<PlannedFault> {
  const rnd = mulberry32(seed);
  for (;;) {
    const kind = FAULT_KINDS[Math.floor(rnd() * FAULT_KINDS.length)];
    const target = Math.floor(rnd() * 1000);
    const pauseS = pause.minS + Math.floor(rnd() * (pause.maxS - pause.minS + 1));
    yield { kind, target, pauseS };
  }
}

/** The first `n` faults of a seed's sequence. */
export function planFaults(seed: number, n: number, pause: PauseRange = DEFAULT_PAUSE): PlannedFault[] {
  const out: PlannedFault[] = [];
  if (n <= 0) return out;
  for (const f of faultPlan(seed, pause)) {
    out.push(f);
    if (out.length >= n) break;
  }
  return out;
}

/** The replica a planned fault aims at, among the replicas of the moment (inventory order). */
export function targetOf(f: PlannedFault, replicas: string[]): string {
  if (!replicas.length) throw new Error('no replica to aim at');
  return replicas[f.target % replicas.length];
}
