/**
 * The closed error hierarchy of audience-sync. Every error thrown by library code is one of these
 * classes; each carries whether retrying can help, so callers decide from the type alone.
 */

/** Stable failure codes, written to sync logs and shown in reports (PRODUCT.md, error taxonomy). */
export const FAILURE_CODES = [
  "invalid_email",
  "invalid_user_id",
  "missing_identifier",
  "duplicate_identity",
  "user_not_found",
  "forgotten_user",
  "identity_conflict",
  "invalid_data",
  "rate_limited",
  "server_error",
  "network_error",
  "request_rejected",
  "list_not_found",
  "auth_failed",
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export abstract class AudienceSyncError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A problem in the config file or command line: exit code 2. `path` names the offending key. */
export class ConfigError extends AudienceSyncError {
  readonly retryable = false;
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}

/** The API key was refused (401/403). Fatal for the run. */
export class AuthError extends AudienceSyncError {
  readonly retryable = false;
  readonly code: FailureCode = "auth_failed";
}

/** A source (warehouse) could not be reached, or a query failed. */
export class SourceError extends AudienceSyncError {
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options);
    this.retryable = options?.retryable ?? false;
  }
}

/** A request failed in a way that a later attempt may fix (408, 5xx, reset, timeout). */
export class RetryableError extends AudienceSyncError {
  readonly retryable = true;
  constructor(
    message: string,
    readonly code: FailureCode,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** HTTP 429. `retryAfterMs` is set when the server sent Retry-After. */
export class RateLimitedError extends RetryableError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message, "rate_limited", 429);
  }
}

/** A request failed for good (other 4xx, list gone, malformed answer). */
export class FatalError extends AudienceSyncError {
  readonly retryable = false;
  constructor(
    message: string,
    readonly code: FailureCode,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Another run of the same sync holds the lock. */
export class LockedError extends AudienceSyncError {
  readonly retryable = false;
}

/** The run was stopped by the user (Ctrl-C, SIGTERM) or by an AbortSignal. */
export class CancelledError extends AudienceSyncError {
  readonly retryable = false;
}

/** Replaces every occurrence of a secret in a string; use on anything that leaves the process. */
export function redact(text: string, ...secrets: (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join("[REDACTED]");
  }
  return out;
}
