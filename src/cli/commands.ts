// Every subcommand is registered here, one line each; the command itself lives in its own module.
import type { Command } from 'commander';
import { registerApply } from './commands/apply.js';
import { registerBackup } from './commands/backup.js';
import { registerInit } from './commands/init.js';
import { registerRender } from './commands/render.js';
import { registerSchema } from './commands/schema.js';
import { registerStatus } from './commands/status.js';
import { registerSwitchover } from './commands/switchover.js';
import { registerValidate } from './commands/validate.js';

export function registerCommands(program: Command): void {
  registerInit(program);
  registerValidate(program);
  registerRender(program);
  registerSchema(program);
  registerApply(program);
  registerStatus(program);
  registerSwitchover(program);
  registerBackup(program);
  // registered by each command module as it lands
}
