#!/usr/bin/env node
/**
 * Entry point of the `audience-sync` command. Each command lives in its own module under
 * src/cli/ and registers itself here; commands hold output only, no logic a test would want.
 */
import { Command } from "commander";
import { registerCheck } from "./check.js";
import { registerDemo } from "./demo.js";
import { registerEmulator } from "./emulator.js";
import { registerInit } from "./init.js";
import { registerLists } from "./lists.js";
import { runCli } from "./run.js";
import { registerSchema } from "./schema.js";
import { registerServe } from "./serve.js";
import { registerSync } from "./sync.js";

const program = new Command();
program
  .name("audience-sync")
  .description("Mirror a warehouse query into an Iterable static list")
  .version("0.1.0")
  .option("-c, --config <file>", "config file", "./audience-sync.yaml");

// Commands register here, one line each.
registerCheck(program);
registerDemo(program);
registerInit(program);
registerEmulator(program);
registerLists(program);
registerSchema(program);
registerServe(program);
registerSync(program);

await runCli(program, process.argv);
