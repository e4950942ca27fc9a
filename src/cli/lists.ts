import type { Command } from "commander";
import { loadConfig } from "../config/index.js";
import { AudienceSyncError } from "../errors.js";
import { IterableClient } from "../iterable/client.js";
import {
  explainForDestination,
  pickDestination,
  renderListTable,
  toListRows,
} from "../iterable/list-table.js";

/** `audience-sync lists [DESTINATION] [--json]`: the lists of an Iterable project. */
export function registerLists(program: Command): void {
  program
    .command("lists")
    .description("show the lists of an Iterable project (id, name, type, created)")
    .argument("[destination]", "name under destinations; optional when there is only one")
    .option("--json", "print a JSON array instead of a table")
    .action(async (destinationName: string | undefined, opts: { json?: boolean }) => {
      const config = await loadConfig(program.opts<{ config: string }>().config);
      const { name, destination } = pickDestination(config.destinations, destinationName);
      const client = IterableClient.fromDestination(destination);
      try {
        const rows = toListRows(await client.getLists());
        process.stdout.write(
          opts.json ? `${JSON.stringify(rows, null, 2)}\n` : renderListTable(rows),
        );
      } catch (err) {
        throw err instanceof AudienceSyncError
          ? explainForDestination(err, name, destination)
          : err;
      } finally {
        await client.close();
      }
    });
}
