/**
 * What `audience-sync lists` shows (pure): the destination it asks, the rows, and errors turned
 * into the fix. The command in src/cli/lists.ts only wires these to I/O.
 */
import type { DestinationConfig } from "../config/index.js";
import {
  type AudienceSyncError,
  AuthError,
  ConfigError,
  FatalError,
  RetryableError,
} from "../errors.js";
import type { ListDetails } from "./wire.js";

/** The named destination, or the only one when no name is given. */
export function pickDestination(
  destinations: Record<string, DestinationConfig>,
  name: string | undefined,
): { name: string; destination: DestinationConfig } {
  const names = Object.keys(destinations);
  if (name !== undefined) {
    const destination = destinations[name];
    if (!destination) {
      throw new ConfigError(
        names.length > 0
          ? `unknown destination "${name}"; defined destinations: ${names.join(", ")}`
          : `unknown destination "${name}"; the config defines no destinations: add one under destinations`,
      );
    }
    return { name, destination };
  }
  const [only] = names;
  if (names.length === 1 && only !== undefined) {
    return { name: only, destination: destinations[only] as DestinationConfig };
  }
  throw new ConfigError(
    names.length === 0
      ? "the config defines no destinations: add an Iterable project under destinations"
      : `the config defines ${names.length} destinations; name one: ${names.join(", ")}`,
  );
}

export interface ListRow {
  id: number;
  name: string;
  type: string;
  description?: string;
  /** ISO 8601, or null when Iterable did not say. */
  createdAt: string | null;
}

export function toListRows(lists: readonly ListDetails[]): ListRow[] {
  return [...lists]
    .sort((a, b) => a.id - b.id)
    .map((l) => {
      const row: ListRow = {
        id: l.id,
        name: l.name,
        type: l.listType ?? "Standard",
        createdAt: isoOrNull(l.createdAt),
      };
      if (l.description !== undefined) row.description = l.description;
      return row;
    });
}

function isoOrNull(epochMs: number | undefined): string | null {
  if (epochMs === undefined) return null;
  const d = new Date(epochMs);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** A list name is text someone typed in Iterable's UI: keep it from moving the terminal. */
function printable(text: string): string {
  return text.replace(/\p{Cc}+/gu, " ");
}

/** Aligned columns id / name / type / created (UTC date). */
export function renderListTable(rows: readonly ListRow[]): string {
  const header = ["ID", "NAME", "TYPE", "CREATED"];
  const cells = rows.map((r) => [
    String(r.id),
    printable(r.name),
    r.type,
    r.createdAt?.slice(0, 10) ?? "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)));
  const line = (c: string[]) =>
    c
      .map((cell, i) => (i === 0 ? cell.padStart(widths[0] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const out = [line(header), ...cells.map(line)];
  if (rows.length === 0) out.push("(no lists in this project)");
  return `${out.join("\n")}\n`;
}

/** The client's error with what to change, naming the config keys but never their values. */
export function explainForDestination(
  err: AudienceSyncError,
  name: string,
  destination: DestinationConfig,
): AudienceSyncError {
  // baseUrl overrides dataCenter (config), so the setting to check is whichever is in effect.
  const hostKey = `destinations.${name}.${destination.baseUrl ? "baseUrl" : "dataCenter"}`;
  if (err instanceof AuthError) {
    return new AuthError(
      `${withoutDetail(err.message)}: check destinations.${name}.apiKey / ITERABLE_API_KEY (a server-side key of this project) and ${hostKey}`,
      { cause: err },
    );
  }
  if (err instanceof RetryableError && err.code === "network_error") {
    return new RetryableError(
      `${err.message}: check ${hostKey} and the network`,
      err.code,
      err.status,
      {
        cause: err,
      },
    );
  }
  if (err instanceof FatalError && err.code === "server_error") {
    return new FatalError(
      `${err.message}: does ${hostKey} point to the Iterable API?`,
      err.code,
      err.status,
      {
        cause: err,
      },
    );
  }
  return err;
}

/** "the API key was refused (401 BadApiKey): Disabled API key ..." -> up to the status. */
function withoutDetail(message: string): string {
  const m = /^(the API key was refused \([^)]*\))/.exec(message);
  return m?.[1] ?? message;
}
