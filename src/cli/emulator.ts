import type { Command } from "commander";
import { type EmulatorFlags, emulatorOptionsFromFlags, startBanner } from "../emulator/flags.js";
import { startEmulator } from "../emulator/index.js";

/** `audience-sync emulator`: a local Iterable-compatible API, until Ctrl-C or SIGTERM. */
export function registerEmulator(program: Command): void {
  program
    .command("emulator")
    .description("run a local Iterable-compatible API (the sandbox Iterable lacks)")
    .option("--port <port>", "port to listen on; 0 picks a free one", "4010")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--project-type <type>", "email | userId | hybrid", "hybrid")
    .option("--api-key <key>", "the accepted server-side key (default: $ITERABLE_API_KEY)")
    .option("--rate-limit <n>", "subscribe+unsubscribe requests a second; excess gets 429")
    .option("--fault-rate <p>", "0..1: share of subscribe/unsubscribe answered 500 or reset")
    .option("--latency <ms>", "added to every answer")
    .option("--state <file>", "JSON file loaded at start and saved on stop")
    .option("--new-list-invalid-ms <ms>", "a new list answers invalidListId this long")
    .option("--allow-remote", "allow a non-loopback --host")
    .option("--verbose", "print one line per request")
    .action(async (flags: EmulatorFlags & { verbose?: boolean }) => {
      const options = emulatorOptionsFromFlags(flags);
      if (flags.verbose) {
        options.log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      }
      const emulator = await startEmulator(options);
      process.stdout.write(startBanner(emulator.url, options));
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        const stop = (sig: NodeJS.Signals) => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve(sig);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      process.stderr.write(`${signal}: stopping the emulator\n`);
      await emulator.close();
      if (options.statePath) process.stderr.write(`state saved to ${options.statePath}\n`);
    });
}
