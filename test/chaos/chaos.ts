// `npm run chaos`: the chaos soak on the container lab (see test/chaos/soak.ts): deploys the lab
// cluster (or reuses a verified one) with a timing profile, injects a seeded random sequence of
// the fault suite's faults under a writer and a reader for N minutes, checks that nothing was
// lost, and prints a table per fault kind. Exit 0 when every check passes, 1 when one fails,
// 2 for bad arguments. The report is also written to test-output/chaos-SEED.md and .json.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { ensureCluster, pgha, REPO } from '../helpers.js';
import { InputError } from '../../src/errors.js';
import { TIMING_PROFILES, type TimingProfile } from '../../src/inventory/index.js';
import { DEFAULT_PAUSE, FAULT_KINDS, type PauseRange } from './plan.js';
import { chaosMarkdown, runChaos } from './soak.js';

const HELP = `Usage: npm run chaos -- [--minutes N] [--profile P] [--seed S] [--pause MIN-MAX]

A chaos soak on the container lab (the lab variables PGHA_LAB_DIR, PGHA_LAB_BRIDGE,
PGHA_LAB_SUBNET choose which lab; see npm run lab -- --help). It boots the lab if needed and
deploys the lab cluster with timing profile P (or reuses it when it already verifies with it),
then runs the fault suite's writer through HAProxy's primary port, a reader on its replicas port
and a probe on every member, while injecting a random but reproducible sequence of the suite's
faults:
  ${FAULT_KINDS.join(', ')}.
After each fault the soak waits until every member streams from the leader and every etcd
member is healthy, then pauses (MIN-MAX s, drawn from the seed), and goes on until N minutes have
passed (a fault under way is finished). At the end: no acknowledged write lost, none written
twice, never two writable primaries, no WAL of a diverged timeline in the archive, and
\`pgha verify\` passes.

It prints a table per fault kind (count; failover, healthy-again and write-gap times as
min / median / max; reader errors; read-only errors), every fault in order, and the seed: the
same seed gives the same faults, targets and pauses, so a failing run can be replayed exactly.

Options:
  --minutes N      how long to inject faults (default 5)
  --profile P      timing profile: ${Object.keys(TIMING_PROFILES).join(', ')} (default: the lab inventory's).
                   Another profile than the lab inventory's is applied first, and the cluster
                   keeps it afterwards (\`pgha apply -i $(npm run -s lab -- inventory)\` goes back)
  --seed S         integer 0..4294967295 (default: a random one, printed)
  --pause MIN-MAX  seconds of quiet after each recovery (default ${DEFAULT_PAUSE.minS}-${DEFAULT_PAUSE.maxS})
  -h, --help       this text

Exit status: 0 every check passed, 1 a check failed (the report says which), 2 bad arguments.`;

interface Args {
  minutes: number;
  profile?: TimingProfile;
  seed: number;
  pause: PauseRange;
}

export function parseArgs(argv: string[]): Args | 'help' {
  const out: Args = { minutes: 5, seed: Math.floor(Math.random() * 2 ** 32), pause: DEFAULT_PAUSE };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return 'help';
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new InputError(`${flag}: expected a value`);
      return v;
    };
    switch (flag) {
      case '--minutes': {
        const v = value();
        const n = Number(v);
        if (!/^\d+(\.\d+)?$/.test(v) || n <= 0) throw new InputError(`--minutes: expected a positive number of minutes, got "${v}"`);
        out.minutes = n;
        break;
      }
      case '--profile': {
        const v = value();
        if (!(v in TIMING_PROFILES)) throw new InputError(`--profile: expected one of ${Object.keys(TIMING_PROFILES).join(', ')}, got "${v}"`);
        out.profile = v as TimingProfile;
        break;
      }
      case '--seed': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) > 2 ** 32 - 1) throw new InputError(`--seed: expected an integer 0..4294967295, got "${v}"`);
        out.seed = Number(v);
        break;
      }
      case '--pause': {
        const v = value();
        const m = /^(\d+)-(\d+)$/.exec(v);
        if (!m || Number(m[1]) > Number(m[2])) throw new InputError(`--pause: expected MIN-MAX seconds with MIN <= MAX, e.g. 5-20, got "${v}"`);
        out.pause = { minS: Number(m[1]), maxS: Number(m[2]) };
        break;
      }
      default:
        throw new InputError(`${a}: unknown argument (see --help)`);
    }
  }
  return out;
}

/** The lab inventory, or a copy of it with another timing profile (in a temp dir). */
function inventoryFor(labInventory: string, profile: TimingProfile | undefined): string {
  const doc = parseDocument(readFileSync(labInventory, 'utf8'));
  if (!profile || doc.get('timing') === profile) return labInventory;
  doc.set('timing', profile);
  const file = join(mkdtempSync(join(tmpdir(), 'pgha-chaos-')), 'inventory.yml');
  writeFileSync(file, doc.toString());
  return file;
}

/** Is the cluster already running `profile`'s Patroni timing (so no apply is needed)? */
async function runsProfile(inventory: string): Promise<boolean> {
  const st = await pgha(['verify', '-i', inventory]);
  if (st.code !== 0) return false;
  const { faultContext } = await import('../faults/suite.js');
  const ctx = await faultContext(inventory, () => {});
  return ctx.ttl === TIMING_PROFILES[ctx.inv.timing.profile].ttl;
}

async function main(argv: string[]): Promise<number> {
  let args: Args | 'help';
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof InputError) {
      console.error(`chaos: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  }
  if (args === 'help') {
    console.log(HELP);
    return 0;
  }
  const log = (s: string) => console.log(s);
  const lab = await ensureCluster(log);
  const inventory = inventoryFor(lab, args.profile);
  if (inventory !== lab && !(await runsProfile(inventory))) {
    log(`chaos: applying timing profile ${args.profile}`);
    const a = await pgha(['apply', '-i', inventory]);
    if (a.code !== 0) {
      console.error(`chaos: pgha apply with timing ${args.profile} failed (exit ${a.code}):\n${a.stdout}${a.stderr}`);
      return 1;
    }
  }
  const report = await runChaos({ inventory, minutes: args.minutes, seed: args.seed, pause: args.pause, log });
  const md = chaosMarkdown(report);
  const dir = join(REPO, 'test-output');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `chaos-${report.seed}.md`), `# chaos soak\n\n${md}\n`);
  writeFileSync(join(dir, `chaos-${report.seed}.json`), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\n${md}\n\nwritten: test-output/chaos-${report.seed}.md, .json`);
  if (!report.verified) console.log(`\npgha verify:\n${report.verifyOut}`);
  if (inventory !== lab) console.log(`\nthe cluster runs timing ${report.profile}; pgha apply -i ${lab} returns it to the lab inventory's`);
  return report.passed ? 0 : 1;
}

process.exit(await main(process.argv.slice(2)));
