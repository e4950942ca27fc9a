/** One sync run as the CLI makes it (its own source and client), with fast retries for tests. */
import type { ResolvedSync } from "../../src/config/index.js";
import { IterableClient } from "../../src/iterable/client.js";
import { type RunOptions, type RunReport, reportOf, runSync } from "../../src/sync/run.js";
import type { TestWarehouse } from "./sources.js";

/** Returns the report also when the run failed (runSync attaches it to the error). Errors raised
 *  before a run starts (e.g. the lock is held) are thrown. */
export async function runOnce(
  w: TestWarehouse,
  r: ResolvedSync,
  opts: RunOptions = {},
): Promise<RunReport> {
  const source = await w.open();
  const api = IterableClient.fromDestination(r.destination, {
    retry: { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 50 },
  });
  try {
    return await runSync(r, { api, source }, opts);
  } catch (err) {
    const report = reportOf(err);
    if (report) return report;
    throw err;
  } finally {
    await api.close();
    await source.close();
  }
}
