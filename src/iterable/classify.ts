/**
 * Outcome classification (pure): from an HTTP status and body to the error taxonomy, and from a
 * lists/subscribe or lists/unsubscribe answer to one outcome per record sent.
 */
import {
  type AudienceSyncError,
  AuthError,
  type FailureCode,
  FatalError,
  RateLimitedError,
  RetryableError,
  redact,
} from "../errors.js";
import { parseRetryAfter } from "./backoff.js";
import type { BatchResult, DeliveryRecord, Operation, RecordOutcome } from "./types.js";
import {
  INVALID_LIST_ID_MSG,
  IterableApiResponse,
  type UserBulkUpdateListResponse,
} from "./wire.js";

type Category = "invalid" | "notFound" | "forgotten" | "conflict" | "invalidData";

/** When one record is named in several arrays, the first category here decides its outcome:
 *  a forgotten user is never retried, whatever else the answer says about it. */
const PRECEDENCE: readonly Category[] = [
  "forgotten",
  "invalid",
  "conflict",
  "invalidData",
  "notFound",
];

interface Named {
  /** Lowercased emails (Iterable stores emails lowercased; the record may not be). */
  emails: Map<Category, Set<string>>;
  userIds: Map<Category, Set<string>>;
}

function collectNames(body: UserBulkUpdateListResponse): Named {
  const emails = new Map<Category, Set<string>>();
  const userIds = new Map<Category, Set<string>>();
  const add = (
    into: Map<Category, Set<string>>,
    cat: Category,
    values: string[] | undefined,
    lower: boolean,
  ) => {
    if (!values || values.length === 0) return;
    let set = into.get(cat);
    if (!set) {
      set = new Set();
      into.set(cat, set);
    }
    for (const v of values) set.add(lower ? v.toLowerCase() : v);
  };
  const f = body.failedUpdates;
  // Older answers carry only the deprecated top-level arrays, newer ones failedUpdates, some both:
  // read both and let the sets merge duplicates (NOTES.md, UserBulkUpdateListResponse).
  add(emails, "invalid", body.invalidEmails, true);
  add(userIds, "invalid", body.invalidUserIds, false);
  if (f) {
    add(emails, "invalid", f.invalidEmails, true);
    add(userIds, "invalid", f.invalidUserIds, false);
    add(emails, "notFound", f.notFoundEmails, true);
    add(userIds, "notFound", f.notFoundUserIds, false);
    add(emails, "forgotten", f.forgottenEmails, true);
    add(userIds, "forgotten", f.forgottenUserIds, false);
    add(emails, "conflict", f.conflictEmails, true);
    add(userIds, "conflict", f.conflictUserIds, false);
    add(emails, "invalidData", f.invalidDataEmails, true);
    add(userIds, "invalidData", f.invalidDataUserIds, false);
  }
  return { emails, userIds };
}

function failureFor(
  op: Operation,
  cat: Category,
  field: "email" | "userId",
  updateExistingUsersOnly: boolean,
): { code: FailureCode; message: string; retryable: boolean } | undefined {
  const what = field === "email" ? "email" : "userId";
  switch (cat) {
    case "invalid":
      return field === "email"
        ? {
            code: "invalid_email",
            message: "Iterable refused the email as invalid",
            retryable: false,
          }
        : {
            code: "invalid_user_id",
            message: "Iterable refused the userId as invalid",
            retryable: false,
          };
    case "notFound":
      // Unsubscribing someone who is not there leaves the list as a mirror wants it (NOTES.md).
      if (op === "unsubscribe") return undefined;
      return {
        code: "user_not_found",
        message: updateExistingUsersOnly
          ? `no Iterable user has this ${what}, and updateExistingUsersOnly forbids creating one`
          : `no Iterable user has this ${what}`,
        // The user may be created in Iterable before a later run.
        retryable: true,
      };
    case "forgotten":
      return {
        code: "forgotten_user",
        message: `the user with this ${what} was forgotten at their request (GDPR); never retried`,
        retryable: false,
      };
    case "conflict":
      return {
        code: "identity_conflict",
        message: `the ${what} belongs to a different Iterable user than the record's other identifier`,
        retryable: false,
      };
    case "invalidData":
      return {
        code: "invalid_data",
        message: `Iterable refused the data sent with this ${what}`,
        retryable: false,
      };
  }
}

/**
 * One outcome per sent record, plus warnings for what the answer says beyond the records: a
 * failCount larger than the records it names (never invented as failures), or names we never sent.
 * A record is failed when any identifier it sent is named in a failure array.
 */
export function classifyBatchResult(
  op: Operation,
  sent: readonly DeliveryRecord[],
  body: UserBulkUpdateListResponse,
  opts: { updateExistingUsersOnly: boolean },
): BatchResult {
  const named = collectNames(body);
  const outcomes: RecordOutcome[] = [];
  const matchedEmails = new Set<string>();
  const matchedUserIds = new Set<string>();
  let namedRecords = 0;

  for (const rec of sent) {
    const email = rec.email?.toLowerCase();
    const hits: { cat: Category; field: "email" | "userId" }[] = [];
    for (const cat of PRECEDENCE) {
      if (email !== undefined && named.emails.get(cat)?.has(email)) {
        hits.push({ cat, field: "email" });
        matchedEmails.add(`${cat}\u0000${email}`);
      }
      if (rec.userId !== undefined && named.userIds.get(cat)?.has(rec.userId)) {
        hits.push({ cat, field: "userId" });
        matchedUserIds.add(`${cat}\u0000${rec.userId}`);
      }
    }
    if (hits.length > 0) namedRecords++;
    let failed: RecordOutcome | undefined;
    for (const hit of hits) {
      const f = failureFor(op, hit.cat, hit.field, opts.updateExistingUsersOnly);
      if (f) {
        failed = { key: rec.key, op, status: "failed", ...f };
        break;
      }
    }
    outcomes.push(failed ?? { key: rec.key, op, status: "succeeded" });
  }

  const warnings: string[] = [];
  if (body.failCount > namedRecords) {
    warnings.push(
      `Iterable counted ${body.failCount} failed ${op}s but named only ${namedRecords} of the ${sent.length} records sent; the unnamed ones are reported as succeeded`,
    );
  }
  let unknown = 0;
  for (const [cat, set] of named.emails) {
    for (const e of set) if (!matchedEmails.has(`${cat}\u0000${e}`)) unknown++;
  }
  for (const [cat, set] of named.userIds) {
    for (const u of set) if (!matchedUserIds.has(`${cat}\u0000${u}`)) unknown++;
  }
  if (unknown > 0) {
    warnings.push(`Iterable's answer named ${unknown} identifier(s) that were not in the request`);
  }
  return { op, outcomes, warnings };
}

/**
 * True when the answer counts no failure and names no identifier in any failure array: then
 * classifyBatchResult finds every record sent succeeded, with no warning, whatever was sent.
 */
export function answerIsClean(body: UserBulkUpdateListResponse): boolean {
  if (body.failCount > 0) return false;
  const named = collectNames(body);
  return named.emails.size === 0 && named.userIds.size === 0;
}

/** The outcomes only; see classifyBatchResult for the warnings. */
export function classifyBatch(
  op: Operation,
  sent: readonly DeliveryRecord[],
  body: UserBulkUpdateListResponse,
  opts: { updateExistingUsersOnly: boolean },
): RecordOutcome[] {
  return classifyBatchResult(op, sent, body, opts).outcomes;
}

/** Every record of a batch failed the same way (request refused, retries exhausted). */
export function failBatch(
  op: Operation,
  records: readonly DeliveryRecord[],
  code: FailureCode,
  message: string,
  retryable: boolean,
): RecordOutcome[] {
  return records.map((r) => ({ key: r.key, op, status: "failed", code, message, retryable }));
}

const MAX_EXCERPT = 200;

/**
 * A short, single-line, printable excerpt of a response body for error messages. Bodies may be
 * JSON, plain text (Iterable's 429) or an HTML page from a proxy; none of them may crash us.
 */
export function bodyExcerpt(bodyText: string, max = MAX_EXCERPT): string {
  const api = parseApiResponse(bodyText);
  let text = api ? `${api.code}: ${api.msg}` : bodyText;
  if (!api && /<[a-z!/][^>]*>/i.test(text)) {
    text = text
      .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, " ")
      .replace(/<[^>]*>/g, " ")
      .replace(/&nbsp;/gi, " ")
      .replace(/&lt;/gi, "<")
      .replace(/&gt;/gi, ">")
      .replace(/&quot;/gi, '"')
      .replace(/&#39;/gi, "'")
      .replace(/&amp;/gi, "&");
  }
  // Control characters could rewrite a terminal line or forge a log line.
  text = text
    .replace(/\p{Cc}+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (text.length > max) text = `${text.slice(0, max - 1)}…`;
  return text || "(empty body)";
}

/** Iterable's JSON error body, or undefined when the body is something else. */
export function parseApiResponse(bodyText: string): IterableApiResponse | undefined {
  const trimmed = bodyText.trimStart();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    const parsed = IterableApiResponse.safeParse(JSON.parse(trimmed));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | string[] | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/**
 * The table from an HTTP failure to an error class (docs/lists.md, "How audience-sync talks to
 * Iterable"). The caller decides what to do by class and code:
 * - 401/403 -> AuthError `auth_failed` (fatal for the run);
 * - 400 naming error.lists.invalidListId -> FatalError `list_not_found` (the transport retries it
 *   for a while first: a list created a moment ago can answer this way, NOTES.md);
 * - 429 -> RateLimitedError, with Retry-After when sent; 408 -> RetryableError `network_error`;
 *   5xx -> RetryableError `server_error`;
 * - any other status -> FatalError `request_rejected` (for the batch, not the run).
 */
export function classifyHttpFailure(
  status: number,
  bodyText: string,
  headers: Headers = {},
  opts: { now?: number; secrets?: (string | undefined)[] } = {},
): AudienceSyncError {
  const secrets = opts.secrets ?? [];
  const api = parseApiResponse(bodyText);
  const excerpt = redact(bodyExcerpt(bodyText), ...secrets);
  if (status === 401 || status === 403) {
    const code = api?.code ?? (status === 401 ? "Unauthorized" : "Forbidden");
    const msg = api ? redact(bodyExcerpt(api.msg), ...secrets) : excerpt;
    return new AuthError(`the API key was refused (${status} ${code}): ${msg}`);
  }
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(header(headers, "retry-after"), opts.now);
    return new RateLimitedError(`Iterable rate limit hit (429): ${excerpt}`, retryAfterMs);
  }
  if (status === 408) {
    return new RetryableError(
      `Iterable timed out reading the request (408): ${excerpt}`,
      "network_error",
      408,
    );
  }
  if (status >= 500 && status <= 599) {
    return new RetryableError(
      `Iterable server error (${status}): ${excerpt}`,
      "server_error",
      status,
    );
  }
  if (status === 400 && bodyText.includes(INVALID_LIST_ID_MSG)) {
    return new FatalError(
      `the list does not exist in this Iterable project (400): ${excerpt}`,
      "list_not_found",
      400,
    );
  }
  return new FatalError(
    `Iterable rejected the request (${status}): ${excerpt}`,
    "request_rejected",
    status,
  );
}
