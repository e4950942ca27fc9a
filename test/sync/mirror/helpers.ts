/** Shared set-up of the review tests: a warehouse, an emulator and a one-sync config. */
import type { ResolvedSync } from "../../../src/config/index.js";
import type { Emulator } from "../../../src/emulator/index.js";
import type { ProjectType } from "../../../src/iterable/wire.js";
import { resolvedSync as resolvedSyncOf } from "../../support/config.js";
import { type TestWarehouse, withSource, writeTable } from "../../support/sources.js";

export const KEY = "review-server-key-0123456789abcdef";

export function resolvedSync(
  w: TestWarehouse,
  emulator: Emulator,
  projectType: ProjectType,
  table: string,
  opts: { extra?: string; batchSize?: number; syncName?: string } = {},
): ResolvedSync {
  return resolvedSyncOf(w, emulator, projectType, table, { ...opts, apiKey: KEY });
}

/** Writes the model table (columns email, uid or the given ones). */
export async function model(
  w: TestWarehouse,
  table: string,
  cols: string[],
  rows: (string | number | null)[][],
): Promise<void> {
  await withSource(w, (s) => writeTable(s, w.dataSchema, table, cols, rows));
}

/** The list's members as Iterable people: `userId|email` per member, sorted. */
export function people(emulator: Emulator, listId: number): string[] {
  return emulator.state
    .members(listId)
    .map((m) => `${m.userId ?? ""}|${m.email ?? ""}`)
    .sort();
}
