/** Retry timing (pure). */

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): "full jitter", a uniform draw in
 * [0, min(maxMs, baseMs * 2^(attempt-1))). Full jitter spreads concurrent retries apart, so the
 * batches that were throttled together do not come back together.
 */
export function backoffDelay(
  attempt: number,
  { baseMs = 500, maxMs = 30_000 }: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const exp = Math.max(0, Math.floor(attempt) - 1);
  // 2^exp overflows to Infinity for large attempts, which min() turns into maxMs.
  const ceiling = Math.min(maxMs, baseMs * 2 ** exp);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(ceiling * r);
}

/**
 * Milliseconds to wait from a Retry-After header: either delta-seconds or an HTTP date
 * (RFC 9110 section 10.2.3). Undefined when absent or unreadable; never negative.
 * Iterable does not document Retry-After; a proxy in front of it may send one.
 */
export function parseRetryAfter(
  header: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // Date.parse accepts many forms; require a letter so "1.5" or "-3" are not read as dates.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
