import type { Command } from "commander";
import { configJsonSchema } from "../config/json-schema.js";

/** `audience-sync schema`: the JSON Schema of audience-sync.yaml, for editors. */
export function registerSchema(program: Command): void {
  program
    .command("schema")
    .description("print the JSON Schema of audience-sync.yaml (for editor completion)")
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}
