import { type Command, CommanderError } from "commander";
import { AudienceSyncError, ConfigError } from "../errors.js";

/** Exit codes of PRODUCT.md: 0 succeeded, 3 completed with failed records, 1 run failed,
 *  2 usage or config error. */
export const EXIT = { ok: 0, failed: 1, usage: 2, withFailures: 3 } as const;

/** Parses argv and runs the chosen command; maps thrown errors to exit codes and a one-line
 *  message on stderr (no stack traces for errors we raise on purpose). */
export async function runCli(program: Command, argv: string[]): Promise<void> {
  program.exitOverride();
  program.configureOutput({ outputError: (str, write) => write(str) });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    process.exitCode = exitCodeFor(err);
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (
      !(err instanceof AudienceSyncError) &&
      process.env.AUDIENCE_SYNC_DEBUG &&
      err instanceof Error
    ) {
      process.stderr.write(`${err.stack ?? ""}\n`);
    }
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof ConfigError) return EXIT.usage;
  return EXIT.failed;
}
