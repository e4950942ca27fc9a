/**
 * Which identifiers of a warehouse row are sent, and under which identity the row is a list member
 * (PRODUCT.md, "Identifier validation" and "Mirror semantics"). Pure: the sync feeds it raw column
 * values and writes the verdict to its logs.
 */
import type { FailureCode } from "../errors.js";
import type { ProjectType } from "../iterable/wire.js";
import { isValidEmail, normalizeEmail } from "./email.js";
import { normalizeUserId, userIdProblem } from "./userId.js";

export type IdentityWarning = { code: FailureCode; message: string };

export type RowVerdict =
  | {
      ok: true;
      /** `e:<email>` or `u:<userId>`; two rows with one identity are one list member. */
      identity: string;
      /** Present only when valid and to be sent. */
      email?: string;
      userId?: string;
      /** Hybrid rows: an invalid identifier that was left out, so the row is still sent. */
      warnings: IdentityWarning[];
    }
  | {
      ok: false;
      code: FailureCode;
      message: string;
      /** The normalised values as read, valid or not, for the sync log. */
      email?: string | null;
      userId?: string | null;
    };

/** One identifier after normalisation: absent, valid, or present with a problem. */
type Checked =
  | { state: "absent" }
  | { state: "valid"; value: string }
  | { state: "invalid"; value: string | null; problem: string };

const MAX_QUOTED_LENGTH = 80;

/** Quotes a value for a message, with invisible characters escaped and long values cut. */
function quote(value: string): string {
  const cut =
    value.length > MAX_QUOTED_LENGTH ? `${value.slice(0, MAX_QUOTED_LENGTH - 3)}...` : value;
  return JSON.stringify(cut).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function typeName(value: unknown): string {
  if (value instanceof Date) return "a date";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

function checkEmail(raw: unknown): Checked {
  if (raw === null || raw === undefined) return { state: "absent" };
  const email = normalizeEmail(raw);
  if (email === null) {
    // A blank string is no address at all; any other value normalizeEmail refuses is a wrong type.
    if (typeof raw === "string") return { state: "absent" };
    return { state: "invalid", value: null, problem: `email is ${typeName(raw)}, not text` };
  }
  if (isValidEmail(email)) return { state: "valid", value: email };
  return {
    state: "invalid",
    value: email,
    problem: `email ${quote(email)} is not a valid address`,
  };
}

function checkUserId(raw: unknown): Checked {
  if (raw === null || raw === undefined) return { state: "absent" };
  const userId = normalizeUserId(raw);
  if (userId === null) {
    if (raw === "") return { state: "absent" };
    return {
      state: "invalid",
      value: null,
      problem: `userId is ${typeName(raw)}, not text or a number`,
    };
  }
  const problem = userIdProblem(userId);
  if (problem === null) return { state: "valid", value: userId };
  return { state: "invalid", value: userId, problem: `userId ${quote(userId)} ${problem}` };
}

function readValue(checked: Checked): string | null {
  return checked.state === "absent" ? null : checked.value;
}

/**
 * The member identity for already validated identifiers: email projects by email, userId projects
 * by userId, hybrid projects by userId when there is one (Iterable's primary key) else by email.
 */
export function identityOf(
  projectType: ProjectType,
  email: string | null,
  userId: string | null,
): string | null {
  switch (projectType) {
    case "email":
      return email === null ? null : `e:${email}`;
    case "userId":
      return userId === null ? null : `u:${userId}`;
    case "hybrid":
      if (userId !== null) return `u:${userId}`;
      return email === null ? null : `e:${email}`;
  }
}

/** A project keyed by a single identifier: that one must be valid; the other column is ignored. */
function singleIdentifier(kind: "email" | "userId", checked: Checked): RowVerdict {
  const prefix = kind === "email" ? "e:" : "u:";
  const invalidCode: FailureCode = kind === "email" ? "invalid_email" : "invalid_user_id";
  if (checked.state === "valid") {
    const verdict: RowVerdict = { ok: true, identity: `${prefix}${checked.value}`, warnings: [] };
    verdict[kind] = checked.value;
    return verdict;
  }
  const failed: RowVerdict =
    checked.state === "absent"
      ? { ok: false, code: "missing_identifier", message: `no ${kind}` }
      : { ok: false, code: invalidCode, message: checked.problem };
  failed[kind] = readValue(checked);
  return failed;
}

/**
 * Validates and normalises one row's identifiers for a project type. Invalid values are never in
 * an ok verdict: a hybrid row sends only its valid identifier and carries the other as a warning.
 */
export function validateRow(
  projectType: ProjectType,
  raw: { email?: unknown; userId?: unknown },
): RowVerdict {
  if (projectType === "email") return singleIdentifier("email", checkEmail(raw.email));
  if (projectType === "userId") return singleIdentifier("userId", checkUserId(raw.userId));

  const email = checkEmail(raw.email);
  const userId = checkUserId(raw.userId);
  const warnings: IdentityWarning[] = [];
  if (email.state === "invalid") warnings.push({ code: "invalid_email", message: email.problem });
  if (userId.state === "invalid") {
    warnings.push({ code: "invalid_user_id", message: userId.problem });
  }
  // userId is Iterable's primary key, so it decides the identity whenever it is usable.
  if (userId.state === "valid") {
    const verdict: RowVerdict = {
      ok: true,
      identity: `u:${userId.value}`,
      userId: userId.value,
      warnings,
    };
    if (email.state === "valid") verdict.email = email.value;
    return verdict;
  }
  if (email.state === "valid") {
    return { ok: true, identity: `e:${email.value}`, email: email.value, warnings };
  }

  const values = { email: readValue(email), userId: readValue(userId) };
  if (email.state === "invalid" && userId.state === "invalid") {
    return {
      ok: false,
      code: "missing_identifier",
      message: `no valid identifier: ${email.problem}; ${userId.problem}`,
      ...values,
    };
  }
  if (email.state === "invalid") {
    return { ok: false, code: "invalid_email", message: email.problem, ...values };
  }
  if (userId.state === "invalid") {
    return { ok: false, code: "invalid_user_id", message: userId.problem, ...values };
  }
  return { ok: false, code: "missing_identifier", message: "no email and no userId", ...values };
}
