/**
 * userId rules. Iterable caps userId at 52 characters; we also refuse what would silently make a
 * different user than the warehouse meant (padding, invisible or non-ASCII characters).
 */

export const MAX_USER_ID_LENGTH = 52;

/** Anything outside printable ASCII (0x20-0x7E). */
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/;

/**
 * The userId as it will be compared and sent. Numbers and bigints become their decimal text.
 * Strings are kept exactly as they are, not trimmed: " 42" and "42" are different users in
 * Iterable, so padding is reported by {@link userIdProblem} rather than repaired.
 */
export function normalizeUserId(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  // An empty string is how many warehouses spell "no userId": absent, not an invalid id.
  if (typeof value === "string") return value === "" ? null : value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return null;
}

/** Why `id` cannot be sent as a userId, in words for a report; null when it can. */
export function userIdProblem(id: string): string | null {
  if (id.length === 0) return "is empty";
  if (id.trim() !== id) return "has leading or trailing whitespace";
  if (id.length > MAX_USER_ID_LENGTH) {
    return `is ${id.length} characters long (at most ${MAX_USER_ID_LENGTH} allowed)`;
  }
  if (NOT_PRINTABLE_ASCII.test(id)) {
    return "contains a character outside printable ASCII (letters, digits, punctuation, space)";
  }
  return null;
}
