// `pgha schema`: prints the inventory's JSON Schema.
import { Command } from 'commander';
import { schemaText } from '../../inventory/commands.js';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .summary("print the inventory's JSON Schema")
    .description(
      "Print the inventory's JSON Schema (draft 2020-12), generated from the same definitions `pgha validate` " +
        'uses, with every default. Editors use it for completion and checks (see the $schema comment in ' +
        'inventories/example.yml).',
    )
    .action(async () => {
      process.stdout.write(schemaText());
    });
}
