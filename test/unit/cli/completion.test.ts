// `pgha completion bash|zsh`: the bash script driven by a real bash (COMP_WORDS as bash sets
// them), the zsh script checked for every command and flag (and by zsh -n where zsh exists).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { completionScript } from '../../../src/cli/completion.js';
import { buildProgram } from '../../../src/cli/main.js';

const program = buildProgram();

/** What bash completes for the words typed so far (the last one being completed). */
function complete(...words: string[]): string[] {
  const script = `${completionScript(program, 'bash')}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _pgha; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd: new URL('../../..', import.meta.url).pathname });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

test('bash: commands, each command\'s flags, choices and file names', () => {
  assert.deepEqual(complete('pgha', 'st'), ['status']);
  assert.deepEqual(complete('pgha', 'b'), ['backup', 'backups']);
  assert.deepEqual(complete('pgha', 'apply', '--l'), ['--limit', '--log']);
  assert.deepEqual(complete('pgha', 'restore', '-'), ['-i', '--inventory', '--to', '--backup', '-y', '--yes', '--log', '--no-log', '--help']);
  assert.deepEqual(complete('pgha', 'backup', '--type', ''), ['full', 'diff', 'incr']);
  assert.deepEqual(complete('pgha', 'completion', ''), ['bash', 'zsh', '--help']);
  assert.deepEqual(complete('pgha', 'validate', '-i', 'inventories/exa'), ['inventories/example.yml']);
});

test('zsh: every command with its summary and every flag of each', () => {
  const z = completionScript(program, 'zsh');
  assert.match(z, /^#compdef pgha\n/);
  for (const c of program.commands.filter((x) => x.name() !== 'help')) {
    assert.match(z, new RegExp(`^ {4}'${c.name()}:[^\\[\\]]+'$`, 'm'), c.name());
    for (const o of c.options) assert.ok(z.includes(`'${o.long}[`), `${c.name()} ${o.long}`);
  }
  assert.match(z, /'--type\[backup type\]:value:\(full diff incr\)'/);
  assert.match(z, /'-i\[inventory YAML file\]:file:_files'/);
  assert.match(z, /'--apt-proxy\[HTTP proxy for apt on every host, e\.g\. http \/\/10\.0\.10\.1 3142\]:value: '/);
  assert.match(z, /'schema:print the inventory'\\''s JSON Schema'/);
  assert.match(z, /compdef _pgha pgha/);
  const zsh = spawnSync('zsh', ['-n'], { input: z, encoding: 'utf8' });
  if (!zsh.error) assert.equal(zsh.status, 0, zsh.stderr);
});

test('an unknown shell is bad input', () => {
  assert.throws(() => completionScript(program, 'fish'), /completion: unknown shell "fish", expected bash or zsh/);
});
