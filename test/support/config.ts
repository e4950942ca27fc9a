/** One sync over a test warehouse and an emulator, as a user would write it in the YAML. */
import { getSync, parseConfig, type ResolvedSync } from "../../src/config/index.js";
import type { Emulator } from "../../src/emulator/index.js";
import type { ProjectType } from "../../src/iterable/wire.js";
import type { TestWarehouse } from "./sources.js";

/** Identifier columns are `email` and `uid`; the list is created as "list <table>". `extra` is
 *  YAML added under the sync (indent it by four spaces). */
export function resolvedSync(
  w: TestWarehouse,
  emulator: Emulator,
  projectType: ProjectType,
  table: string,
  opts: { apiKey: string; extra?: string; batchSize?: number; syncName?: string },
): ResolvedSync {
  const ids =
    projectType === "email"
      ? "{ email: email }"
      : projectType === "userId"
        ? "{ userId: uid }"
        : "{ email: email, userId: uid }";
  const name = opts.syncName ?? "s";
  const yaml = `
sources:
  wh: ${JSON.stringify(w.config)}
destinations:
  it:
    type: iterable
    apiKey: ${opts.apiKey}
    projectType: ${projectType}
    baseUrl: ${emulator.url}
    batchSize: ${opts.batchSize ?? 50}
syncs:
  ${JSON.stringify(name)}:
    source: wh
    destination: it
    table: ${w.dataSchema}.${table}
    list: { create: { name: "list ${table}" } }
    identifiers: ${ids}
${opts.extra ?? ""}
`;
  return getSync(parseConfig(yaml, { env: {} }), name);
}
