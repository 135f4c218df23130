// `npm run lab -- COMMAND`: the container lab's command line (see lab.ts and README.md).
import { spawnSync } from 'node:child_process';
import * as lab from './lab.js';
import { useTrixieLab } from './trixie-lab.js';

const HELP = `Usage: npm run lab -- COMMAND [ARGS]

The pgha container lab: Debian 12 machines (or Debian 13 with PGHA_LAB_RELEASE=trixie;
systemd-nspawn) with systemd, sshd and their own addresses on a private bridge. node1..node3 are the database hosts and node4 the backup
repository host of inventories/lab.yml. Needs root.

Commands:
  up [N]                 boot node1..nodeN (default 4; 5, 6, ... for growth tests) and wait until each answers ssh
  down                   stop everything, remove the machines' disks (base image, key, secrets stay)
  base [trixie-lab]      build the base image now if it is missing (up builds it then too); with
                         trixie-lab, the one of test/cluster/trixie.test.ts's Debian 13 lab
  status                 machines, addresses, links, apt proxy
  ssh NAME [CMD...]      ssh to a machine as admin (interactive without CMD)
  partition NAME         cut the machine's link (host side vb-NAME down)
  heal NAME              restore the link and re-attach it to the bridge (and clear its netem shaping)
  netem NAME [delay MS [JITTER_MS]] [loss PCT%]
                         a degraded link, as tc netem would make it (this kernel has no netem):
                         the machine's outgoing packets held MS +- JITTER_MS, PCT% of its packets
                         dropped in each direction, e.g. \`netem node1 delay 200ms 100ms loss 5%\`;
                         replaces earlier shaping. \`netem NAME clear\` removes it (heal and down too)
  stall NAME SECONDS     the machine's link down for SECONDS, then up again (returns when it is up)
  poweroff NAME          power loss: SIGKILL the machine's init, no clean shutdown
  start NAME             boot a stopped machine again (disk intact)
  rebuild NAME           a fresh machine under the same name and address: powered off, an empty disk
                         from the base image, new host keys, booted again (known_hosts keeps the old
                         keys, as an operator's would: pgha replace records the new one)
  disk NAME              the machine's data disk (/var/lib/postgresql, an 8 GiB disk of its own): size,
                         free space, throttle
  disk NAME slow [IOPS] [MBPS]
                         a slow disk: at most IOPS reads and writes a second each (default 20), and
                         MBPS MiB/s each way if given
  disk NAME fill         fill the data disk to the last block (a filler file of its own)
  disk NAME clear        the data disk back to normal: no throttle, the filler removed
  key                    print the lab's public ssh key (made once)
  inventory              print the path of the pgha inventory for this lab
  bastion on|off         on: boot node5 (if needed) as a jump host and refuse SSH from this host to
                         every other machine (only node5 is reachable); off: reach them all again.
                         \`bastion inventory\` prints a lab inventory that goes through node5

Environment (defaults):
  PGHA_LAB_DIR=/var/lib/pgha-lab   base image, machine disks, key, known_hosts, secrets, logs
  PGHA_LAB_BRIDGE=pghabr0          host bridge
  PGHA_LAB_SUBNET=10.88.213.0/24   host .1 (apt proxy on port 3142), nodeK .(10+K)
  PGHA_LAB_RELEASE=bookworm        the machines' Debian release: bookworm (12) or trixie (13); each has
                                   its own cached base image, and a lab dir holds machines of one release
  PGHA_LAB_KEEP_FAILED=1           leave a failed up in place for inspection (else it is taken down)
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  const name = () => {
    if (!args[0]) throw new Error(`${cmd} needs a machine name (node1, node2, ...)`);
    return args[0];
  };
  switch (cmd) {
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    case 'up': {
      const n = args[0] === undefined ? lab.DEFAULT_MACHINES : Number(args[0]);
      const t0 = Date.now();
      await lab.up(n, (s) => process.stderr.write(`${s}\n`));
      process.stdout.write(`lab up (${lab.labConfig().release}): ${lab.machineNames(n).join(', ')} answer ssh (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      process.stdout.write(`inventory: ${lab.labInventoryPath()}\n`);
      return 0;
    }
    case 'base': {
      if (args[0] === 'trixie-lab') useTrixieLab();
      else if (args[0] !== undefined) throw new Error(`base takes no argument but trixie-lab, not ${args[0]}`);
      const t0 = Date.now();
      lab.prepareBase((s) => process.stderr.write(`${s}\n`));
      process.stdout.write(`base image (${lab.labConfig().release}, ${lab.labConfig().dir}) ready (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      return 0;
    }
    case 'down':
      await lab.down();
      process.stdout.write('lab down\n');
      return 0;
    case 'status': {
      const s = lab.status();
      process.stdout.write(`dir ${s.config.dir}  release ${s.config.release}  bridge ${s.config.bridge} ${s.bridge ? 'up' : 'absent'}  `);
      process.stdout.write(`apt proxy ${s.proxy ? `${s.config.proxyUrl} (pid ${s.proxy})` : 'stopped'}\n`);
      for (const m of s.machines) {
        const link = m.linkUp === null ? 'no link' : m.linkUp ? 'link up' : 'PARTITIONED';
        const shaped = m.netem ? `  netem: ${lab.describeNetem(m.netem)}` : '';
        process.stdout.write(`${m.name.padEnd(7)} ${m.address.padEnd(15)} ${(m.release ?? '-').padEnd(9)} ${m.running ? `running (pid ${m.pid})` : 'stopped'}  ${link}${shaped}\n`);
      }
      if (s.machines.length === 0) process.stdout.write('no machines\n');
      if (lab.isolated()) process.stdout.write(`bastion on: SSH from this host reaches ${lab.BASTION} only\n`);
      return 0;
    }
    case 'ssh': {
      const n = name();
      if (args.length === 1) {
        const r = spawnSync(lab.sshCommandLine(n)[0], ['-t', ...lab.sshCommandLine(n).slice(1)], { stdio: 'inherit' });
        return r.status ?? 1;
      }
      const r = await lab.ssh(n, args.slice(1).join(' '));
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return r.code;
    }
    case 'partition': {
      const link = lab.partition(name());
      process.stdout.write(`${name()} partitioned: its link ${link} is down (nothing reaches it; it reaches nothing)\n`);
      return 0;
    }
    case 'heal': {
      const link = lab.heal(name());
      process.stdout.write(`${name()} healed: its link ${link} is up and on bridge ${lab.labConfig().bridge} again\n`);
      return 0;
    }
    case 'netem': {
      const n = name();
      if (args[1] === 'clear' && args.length === 2) {
        lab.netemClear(n);
        process.stdout.write(`${n}: netem cleared, its link is undegraded\n`);
        return 0;
      }
      const what = await lab.netem(n, lab.parseNetem(args.slice(1)));
      process.stdout.write(`${n}: ${what} on its link ${lab.machineLink(n)} (clear with: netem ${n} clear)\n`);
      return 0;
    }
    case 'stall': {
      const n = name();
      const seconds = Number(/^(\d+(?:\.\d+)?)s?$/.exec(args[1] ?? '')?.[1] ?? NaN);
      if (!Number.isFinite(seconds)) throw new Error('stall needs SECONDS, e.g. stall node1 5');
      process.stdout.write(`${n}: link ${lab.machineLink(n)} down for ${seconds} s ...\n`);
      await lab.stall(n, seconds);
      process.stdout.write(`${n}: link up again after ${seconds} s\n`);
      return 0;
    }
    case 'poweroff': {
      const { killed } = await lab.poweroff(name());
      process.stdout.write(
        killed
          ? `${name()} powered off (SIGKILL of its ${killed.what}, pid ${killed.pid}; no clean shutdown)\n`
          : `${name()} was not running: nothing to power off\n`,
      );
      return 0;
    }
    case 'start': {
      const r = await lab.start(name());
      const after = `answers ssh after ${(r.sshMs / 1000).toFixed(1)} s`;
      process.stdout.write(r.booted ? `${name()} started; ${after}\n` : `${name()} was running already; ${after}\n`);
      return 0;
    }
    case 'rebuild': {
      const r = await lab.rebuild(name());
      process.stdout.write(
        `${name()} rebuilt: an empty disk from the base image, new host keys, same name and address; answers ssh after ${(r.ms / 1000).toFixed(1)} s\n` +
          `its new host keys:\n${r.fingerprints.map((f) => `  ${f}\n`).join('')}` +
          `known_hosts still has its old keys: pgha replace ${name()} shows the new fingerprint and records it\n`,
      );
      return 0;
    }
    case 'disk': {
      const [, verb, ...rest] = args;
      const count = (v: string | undefined, what: string, fallback?: number) => {
        if (v === undefined) return fallback;
        if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new Error(`disk ${name()} slow: ${what} must be a positive number, got ${JSON.stringify(v)}`);
        return Number(v);
      };
      const st =
        verb === undefined ? lab.diskState(name())
        : verb === 'slow' ? lab.slowDisk(name(), count(rest[0], 'IOPS', 20)!, count(rest[1], 'MBPS'))
        : verb === 'fill' ? lab.fillDisk(name())
        : verb === 'clear' ? lab.clearDisk(name())
        : null;
      if (!st) throw new Error(`disk ${name()} ${verb}: expected nothing, slow, fill or clear`);
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
      const throttle = st.iops === undefined ? 'not throttled' : `throttled to ${st.iops} IOPS${st.mbps === undefined ? '' : ` and ${st.mbps} MiB/s`}`;
      process.stdout.write(`${name()} data disk: ${mib(st.size)}, ${mib(st.free)} free${st.filled ? ` (${mib(st.filled)} of filler)` : ''}, ${throttle}\n`);
      return 0;
    }
    case 'key':
      process.stdout.write(`${lab.ensureKey()}\n`);
      process.stderr.write(`(private key: ${lab.labConfig().keyPath})\n`);
      return 0;
    case 'inventory':
      process.stdout.write(`${lab.labInventoryPath()}\n`);
      return 0;
    case 'bastion': {
      if (args[0] === 'on') {
        const address = await lab.bastionOn((s) => process.stderr.write(`${s}\n`));
        process.stdout.write(`bastion ${lab.BASTION} (${address}) is the only machine this host reaches over SSH; pgha goes through it with ssh.jump\n`);
      } else if (args[0] === 'off') {
        lab.bastionOff();
        process.stdout.write('bastion off: every machine answers SSH from this host again\n');
      } else if (args[0] === 'inventory') {
        process.stdout.write(lab.labBastionInventoryText());
      } else {
        throw new Error('bastion needs on, off or inventory');
      }
      return 0;
    }
    default:
      process.stderr.write(`unknown command: ${cmd}\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`lab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
