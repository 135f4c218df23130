// The convergence engine `pgha apply` is built on. Start here:
//   const rollout = new Rollout({ check, reporter });
//   await rollout.stage('name', conns, (conn) => [file(...), service(...)]);  // throws StageFailed
//   await rollout.waitFor('what', probe, { timeoutMs });                      // health gate
//   return rollout.finish();                                                  // recap + exit code
export { Rollout, StageFailed, dedupeHandlers, type OpResult, type HostResult, type StageResult, type RolloutOptions } from './stage.js';
export {
  file,
  directory,
  packages,
  aptUpgrade,
  service,
  restartService,
  reloadService,
  daemonReload,
  systemGroup,
  systemUser,
  command,
  AptLockWait,
  APT_LOCKS,
  parseLockHolders,
  describeHolder,
  type AptLock,
  type LockHolder,
  type Operation,
  type Handler,
  type Change,
} from './ops.js';
export { Facts, readOsRelease, parseOsRelease, parseServiceShow, SERVICE_SHOW, type FileFact, type FactRequest, type OsRelease } from './facts.js';
export { Reporter, createReporter, type ReporterOptions, type Counts, type OpStatus } from './reporter.js';
export { waitFor, GiveUp, type Probe, type WaitOptions } from './wait.js';
export { Steps, stepFailure, formatSeconds, type StepTiming } from './steps.js';
export { unifiedDiff } from './diff.js';
