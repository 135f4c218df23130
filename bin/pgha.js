#!/usr/bin/env node
// Entry point installed as `pgha`: runs the compiled CLI, bundled into dist/bundle (built by `npm ci`
// through the prepare script): one file per lazily loaded command instead of hundreds of modules.
// A plain `pgha status` is first offered to a running connection keeper (quick-status.js), which
// answers it without this process loading the CLI.
const quick = process.argv[2] === 'status' ? await (await import('../dist/bundle/quick-status.js')).quickStatus(process.argv) : undefined;
if (quick !== undefined) process.exitCode = quick;
else {
  const { main } = await import('../dist/bundle/main.js');
  process.exitCode = await main(process.argv);
}
