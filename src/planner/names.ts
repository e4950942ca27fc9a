import { createHash } from "node:crypto";

/**
 * Warehouse table names of one sync's state. Sync names may hold `-`, and dialects cap name
 * length (PostgreSQL 63, MySQL 64), so each sync gets a short, stable slug plus a hash of its
 * full name: two syncs never share tables even if their slugs collide.
 */
export function syncSlug(syncName: string): string {
  const base = syncName
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .slice(0, 24);
  const hash = createHash("sha256").update(syncName).digest("hex").slice(0, 6);
  return `s_${base}_${hash}`;
}

export type RunTableKind = "rows" | "members" | "plan" | "outcomes" | "snap";

/** Name of a run-scoped table (`rows`, `members`, `plan`, `outcomes`) or of a snapshot. */
export function runTable(syncName: string, kind: RunTableKind, runId: number): string {
  return `${syncSlug(syncName)}_${kind}_${runId}`;
}

/** Prefix shared by every table of a sync, for clean-up of tables left by a crashed run. */
export function tablePrefix(syncName: string): string {
  return `${syncSlug(syncName)}_`;
}

/** Parses a table name of this sync back into kind and run id (null if it is not one of ours). */
export function parseRunTable(
  syncName: string,
  table: string,
): { kind: RunTableKind; runId: number } | null {
  const prefix = tablePrefix(syncName);
  if (!table.startsWith(prefix)) return null;
  const m = /^(rows|members|plan|outcomes|snap)_(\d+)$/.exec(table.slice(prefix.length));
  if (!m) return null;
  return { kind: m[1] as RunTableKind, runId: Number(m[2]) };
}
