#!/usr/bin/env node
// Entry point installed as `pgha`: runs the compiled CLI, bundled into dist/bundle (built by `npm ci`
// through the prepare script): one file per lazily loaded command instead of hundreds of modules.
import { main } from '../dist/bundle/main.js';

process.exitCode = await main(process.argv);
