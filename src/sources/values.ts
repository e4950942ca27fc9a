/**
 * One JS shape for warehouse values, whatever the driver: integers and decimals become numbers
 * only when the number prints back to the same text (no precision lost), else they stay strings;
 * dates are "YYYY-MM-DD", timestamps ISO 8601 ("T" separator; "Z" when the type has a zone).
 */
import { SourceError } from "../errors.js";

/** "123" -> 123, "1.5" -> 1.5, but "1.50" and "12345678901234567890" stay strings. */
export function numberFromText(text: string): number | string {
  const n = Number(text);
  return Number.isFinite(n) && String(n) === text ? n : text;
}

export function numberFromBigInt(value: bigint): number | string {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value.toString();
}

/** "2024-01-02 03:04:05.123" (a zoneless timestamp as databases print it) -> "2024-01-02T03:04:05.123" */
export function isoFromLocalTimestamp(text: string): string {
  return text.replace(" ", "T");
}

export function isoFromDate(date: Date): string {
  return Number.isNaN(date.getTime()) ? String(date) : date.toISOString();
}

/** The password in a connection URL, for redaction. */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const pw = new URL(url).password;
    return pw ? decodeURIComponent(pw) : undefined;
  } catch {
    return undefined;
  }
}

/** "host:port" of a connection as the user configured it, for messages. */
export function endpoint(
  config: { url?: string; host?: string; port?: number },
  defaultPort: number,
): string {
  if (config.url) {
    try {
      const u = new URL(config.url);
      return `${u.hostname || "localhost"}:${u.port || defaultPort}`;
    } catch {
      return "(unparsable url)";
    }
  }
  return `${config.host ?? "localhost"}:${config.port ?? defaultPort}`;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    // AggregateError (e.g. both IPv4 and IPv6 refused) carries its reasons inside.
    if (error instanceof AggregateError && error.errors.length > 0 && !error.message) {
      return error.errors.map(errorMessage).join("; ");
    }
    return error.message || error.name;
  }
  return String(error);
}

/** Rejects the values insertRows cannot write, with the column that held them. */
export function checkBatchShape(batch: unknown[][], width: number): void {
  for (const row of batch) {
    if (row.length !== width) {
      throw new SourceError(`insertRows: a row has ${row.length} values for ${width} columns`);
    }
  }
}
