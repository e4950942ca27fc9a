import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isValidEmail } from "../../src/identity/email.js";
import { identityOf, validateRow } from "../../src/identity/rules.js";
import { userIdProblem } from "../../src/identity/userId.js";
import { PROJECT_TYPES } from "../../src/iterable/wire.js";

describe("validateRow, email project", () => {
  it("trims and lowercases the email and keys the row by it", () => {
    expect(validateRow("email", { email: "  Joe@Apache.ORG ", userId: "ignored " })).toEqual({
      ok: true,
      identity: "e:joe@apache.org",
      email: "joe@apache.org",
      warnings: [],
    });
  });

  it("fails an invalid email with invalid_email and names the value", () => {
    expect(validateRow("email", { email: "joe@@x.com", userId: "42" })).toEqual({
      ok: false,
      code: "invalid_email",
      message: 'email "joe@@x.com" is not a valid address',
      email: "joe@@x.com",
    });
  });

  it.each([null, undefined, "", "   "])(
    "fails a missing email (%j) with missing_identifier",
    (email) => {
      expect(validateRow("email", { email, userId: "42" })).toEqual({
        ok: false,
        code: "missing_identifier",
        message: "no email",
        email: null,
      });
    },
  );

  it("fails a value of the wrong type with invalid_email", () => {
    const verdict = validateRow("email", { email: new Date(0) });
    expect(verdict).toEqual({
      ok: false,
      code: "invalid_email",
      message: "email is a date, not text",
      email: null,
    });
  });
});

describe("validateRow, userId project", () => {
  it("keeps the userId as is and keys the row by it", () => {
    expect(validateRow("userId", { userId: "User-42", email: "not an email" })).toEqual({
      ok: true,
      identity: "u:User-42",
      userId: "User-42",
      warnings: [],
    });
  });

  it("turns numbers into text", () => {
    expect(validateRow("userId", { userId: 42n })).toMatchObject({ ok: true, identity: "u:42" });
    expect(validateRow("userId", { userId: 7 })).toMatchObject({ ok: true, userId: "7" });
  });

  it("fails a padded userId with invalid_user_id", () => {
    expect(validateRow("userId", { userId: " 42" })).toEqual({
      ok: false,
      code: "invalid_user_id",
      message: 'userId " 42" has leading or trailing whitespace',
      userId: " 42",
    });
  });

  it("shows invisible characters escaped in the message", () => {
    expect(validateRow("userId", { userId: "4\t2" })).toMatchObject({
      code: "invalid_user_id",
      message: expect.stringContaining('userId "4\\t2" contains a character outside printable'),
    });
  });

  it("fails a missing userId with missing_identifier", () => {
    expect(validateRow("userId", { email: "joe@apache.org" })).toEqual({
      ok: false,
      code: "missing_identifier",
      message: "no userId",
      userId: null,
    });
  });
});

describe("validateRow, hybrid project", () => {
  it("keys a row with both identifiers by userId and sends both", () => {
    expect(validateRow("hybrid", { email: "Joe@Apache.org", userId: "42" })).toEqual({
      ok: true,
      identity: "u:42",
      email: "joe@apache.org",
      userId: "42",
      warnings: [],
    });
  });

  it("keys a row with only an email by email", () => {
    expect(validateRow("hybrid", { email: "joe@apache.org", userId: null })).toEqual({
      ok: true,
      identity: "e:joe@apache.org",
      email: "joe@apache.org",
      warnings: [],
    });
  });

  it("sends only the valid userId and warns about the invalid email", () => {
    expect(validateRow("hybrid", { email: "joe@@x.com", userId: "42" })).toEqual({
      ok: true,
      identity: "u:42",
      userId: "42",
      warnings: [{ code: "invalid_email", message: 'email "joe@@x.com" is not a valid address' }],
    });
  });

  it("sends only the valid email and warns about the invalid userId", () => {
    expect(validateRow("hybrid", { email: "joe@apache.org", userId: "42 " })).toEqual({
      ok: true,
      identity: "e:joe@apache.org",
      email: "joe@apache.org",
      warnings: [
        { code: "invalid_user_id", message: 'userId "42 " has leading or trailing whitespace' },
      ],
    });
  });

  it("fails a row with neither identifier with missing_identifier", () => {
    expect(validateRow("hybrid", {})).toEqual({
      ok: false,
      code: "missing_identifier",
      message: "no email and no userId",
      email: null,
      userId: null,
    });
  });

  it("fails a row whose only identifier is invalid with that identifier's code", () => {
    expect(validateRow("hybrid", { email: "joe@apache", userId: null })).toMatchObject({
      ok: false,
      code: "invalid_email",
      email: "joe@apache",
      userId: null,
    });
    expect(validateRow("hybrid", { userId: "x".repeat(53) })).toMatchObject({
      ok: false,
      code: "invalid_user_id",
      message: `userId "${"x".repeat(53)}" is 53 characters long (at most 52 allowed)`,
    });
  });

  it("fails a row with two invalid identifiers with missing_identifier naming both", () => {
    expect(validateRow("hybrid", { email: "joe@@x.com", userId: " 7" })).toEqual({
      ok: false,
      code: "missing_identifier",
      message:
        'no valid identifier: email "joe@@x.com" is not a valid address; userId " 7" has leading or trailing whitespace',
      email: "joe@@x.com",
      userId: " 7",
    });
  });

  it("takes an empty userId as no userId", () => {
    expect(validateRow("hybrid", { email: "joe@example.com", userId: "" })).toEqual({
      ok: true,
      identity: "e:joe@example.com",
      email: "joe@example.com",
      warnings: [],
    });
    expect(validateRow("userId", { userId: "" })).toMatchObject({
      ok: false,
      code: "missing_identifier",
    });
  });

  it("cuts very long values in messages", () => {
    const verdict = validateRow("hybrid", { email: `${"a".repeat(500)}@x.com` });
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.message.length).toBeLessThan(120);
  });
});

describe("identityOf", () => {
  it.each([
    ["email", "a@b.com", "7", "e:a@b.com"],
    ["email", null, "7", null],
    ["userId", "a@b.com", "7", "u:7"],
    ["userId", "a@b.com", null, null],
    ["hybrid", "a@b.com", "7", "u:7"],
    ["hybrid", "a@b.com", null, "e:a@b.com"],
    ["hybrid", null, null, null],
  ] as const)("%s(%s, %s) -> %s", (projectType, email, userId, expected) => {
    expect(identityOf(projectType, email, userId)).toBe(expected);
  });

  it("agrees with validateRow", () => {
    for (const projectType of PROJECT_TYPES) {
      const verdict = validateRow(projectType, { email: "a@b.com", userId: "7" });
      if (!verdict.ok) throw new Error("expected ok");
      expect(identityOf(projectType, verdict.email ?? null, verdict.userId ?? null)).toBe(
        verdict.identity,
      );
    }
  });
});

describe("validateRow properties", () => {
  const anyValue = fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.string(),
    fc.string({ unit: "grapheme-ascii" }),
    fc.emailAddress(),
    fc.emailAddress().map((e) => ` ${e.toUpperCase()}\t`),
    fc.integer(),
    fc.bigInt(),
    fc.boolean(),
  );

  it("never returns ok with an invalid email or userId", () => {
    fc.assert(
      fc.property(fc.constantFrom(...PROJECT_TYPES), anyValue, anyValue, (type, email, userId) => {
        const verdict = validateRow(type, { email, userId });
        if (!verdict.ok) return;
        if (verdict.email !== undefined) expect(isValidEmail(verdict.email)).toBe(true);
        if (verdict.userId !== undefined) expect(userIdProblem(verdict.userId)).toBeNull();
        expect(verdict.email !== undefined || verdict.userId !== undefined).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("keys a hybrid row with a valid userId by that userId", () => {
    const validUserId = fc.oneof(
      fc.integer().map(String),
      fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,50}[\x21-\x7e])?$/),
    );
    fc.assert(
      fc.property(anyValue, validUserId, (email, userId) => {
        const verdict = validateRow("hybrid", { email, userId });
        expect(verdict.ok).toBe(true);
        if (verdict.ok) expect(verdict.identity).toBe(`u:${userId}`);
        if (verdict.ok) expect(verdict.identity.startsWith("u:")).toBe(true);
      }),
    );
  });
});
