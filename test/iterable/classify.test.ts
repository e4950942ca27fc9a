import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AuthError, FatalError, RateLimitedError, RetryableError } from "../../src/errors.js";
import {
  bodyExcerpt,
  classifyBatch,
  classifyBatchResult,
  classifyHttpFailure,
} from "../../src/iterable/classify.js";
import type { DeliveryRecord, RecordOutcome } from "../../src/iterable/types.js";
import { RATE_LIMIT_TEXT, UserBulkUpdateListResponse } from "../../src/iterable/wire.js";

const off = { updateExistingUsersOnly: false };

function byKey(outcomes: RecordOutcome[]): Record<string, string> {
  return Object.fromEntries(outcomes.map((o) => [o.key, o.status === "succeeded" ? "ok" : o.code]));
}

const records: DeliveryRecord[] = [
  { key: "a", email: "a@example.com" },
  { key: "b", email: "B@Example.com" },
  { key: "c", userId: "u-c" },
  { key: "d", email: "d@example.com", userId: "u-d" },
];

describe("classifyBatch", () => {
  it("succeeds every record of a clean answer, one outcome per record in order", () => {
    const out = classifyBatch("subscribe", records, { successCount: 4, failCount: 0 }, off);
    expect(out.map((o) => o.key)).toEqual(["a", "b", "c", "d"]);
    expect(out.every((o) => o.status === "succeeded" && o.op === "subscribe")).toBe(true);
  });

  it("reads failedUpdates", () => {
    const out = classifyBatch(
      "subscribe",
      records,
      {
        successCount: 1,
        failCount: 3,
        failedUpdates: {
          invalidEmails: ["a@example.com"],
          forgottenUserIds: ["u-c"],
          conflictEmails: ["d@example.com"],
        },
      },
      off,
    );
    expect(byKey(out)).toEqual({
      a: "invalid_email",
      b: "ok",
      c: "forgotten_user",
      d: "identity_conflict",
    });
  });

  it("reads the deprecated top-level arrays when an older answer carries them alone", () => {
    const body = UserBulkUpdateListResponse.parse({
      successCount: 2,
      failCount: 2,
      invalidEmails: ["a@example.com"],
      invalidUserIds: ["u-c"],
    });
    expect(byKey(classifyBatch("subscribe", records, body, off))).toEqual({
      a: "invalid_email",
      b: "ok",
      c: "invalid_user_id",
      d: "ok",
    });
  });

  it("counts a record named in both shapes once and warns about nothing", () => {
    const res = classifyBatchResult(
      "subscribe",
      records,
      {
        successCount: 3,
        failCount: 1,
        invalidEmails: ["a@example.com"],
        failedUpdates: { invalidEmails: ["a@example.com"] },
      },
      off,
    );
    expect(byKey(res.outcomes).a).toBe("invalid_email");
    expect(res.warnings).toEqual([]);
  });

  it("matches emails case-insensitively in both directions", () => {
    const out = classifyBatch(
      "subscribe",
      records,
      {
        successCount: 2,
        failCount: 2,
        failedUpdates: { invalidDataEmails: ["b@example.com", "A@EXAMPLE.COM"] },
      },
      off,
    );
    expect(byKey(out)).toMatchObject({ a: "invalid_data", b: "invalid_data" });
  });

  it("matches userIds exactly", () => {
    const out = classifyBatch(
      "subscribe",
      records,
      { successCount: 4, failCount: 0, failedUpdates: { invalidUserIds: ["U-C"] } },
      off,
    );
    expect(byKey(out).c).toBe("ok");
  });

  it("fails a record when any identifier it sent is named", () => {
    const out = classifyBatch(
      "subscribe",
      records,
      { successCount: 3, failCount: 1, failedUpdates: { invalidDataUserIds: ["u-d"] } },
      off,
    );
    expect(byKey(out).d).toBe("invalid_data");
  });

  it("treats notFound on unsubscribe as success", () => {
    const out = classifyBatch(
      "unsubscribe",
      records,
      {
        successCount: 2,
        failCount: 2,
        failedUpdates: { notFoundEmails: ["a@example.com"], notFoundUserIds: ["u-c"] },
      },
      off,
    );
    expect(out.every((o) => o.status === "succeeded" && o.op === "unsubscribe")).toBe(true);
  });

  it("fails notFound on subscribe with user_not_found, and says why with updateExistingUsersOnly", () => {
    const out = classifyBatch(
      "subscribe",
      records,
      { successCount: 3, failCount: 1, failedUpdates: { notFoundUserIds: ["u-c"] } },
      { updateExistingUsersOnly: true },
    );
    const c = out.find((o) => o.key === "c");
    expect(c).toMatchObject({ status: "failed", code: "user_not_found", retryable: true });
    expect(c?.status === "failed" && c.message).toContain("updateExistingUsersOnly");
  });

  it("never retries a forgotten user, even when another array also names it", () => {
    const out = classifyBatch(
      "unsubscribe",
      records,
      {
        successCount: 3,
        failCount: 1,
        failedUpdates: { notFoundEmails: ["d@example.com"], forgottenUserIds: ["u-d"] },
      },
      off,
    );
    expect(out.find((o) => o.key === "d")).toMatchObject({
      code: "forgotten_user",
      retryable: false,
    });
  });

  it("does not invent failures when failCount exceeds the records named, but warns", () => {
    const res = classifyBatchResult(
      "subscribe",
      records,
      { successCount: 1, failCount: 3, failedUpdates: { invalidEmails: ["a@example.com"] } },
      off,
    );
    expect(res.outcomes.filter((o) => o.status === "failed")).toHaveLength(1);
    expect(res.warnings).toHaveLength(1);
    expect(res.warnings[0]).toContain("counted 3");
  });

  it("warns about names that were not sent", () => {
    const res = classifyBatchResult(
      "subscribe",
      records,
      { successCount: 4, failCount: 1, failedUpdates: { invalidEmails: ["zz@example.com"] } },
      off,
    );
    expect(res.outcomes.every((o) => o.status === "succeeded")).toBe(true);
    expect(res.warnings.join(" ")).toContain("not in the request");
  });
});

describe("classifyHttpFailure", () => {
  it("401 with Iterable's JSON is an AuthError naming the code, not the key", () => {
    const err = classifyHttpFailure(
      401,
      '{"msg":"Invalid API key: secret-key-123","code":"BadApiKey","params":null}',
      {},
      { secrets: ["secret-key-123"] },
    );
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toContain("401 BadApiKey");
    expect(err.message).not.toContain("secret-key-123");
  });

  it("403 is an AuthError too", () => {
    expect(classifyHttpFailure(403, "Forbidden")).toBeInstanceOf(AuthError);
  });

  it("429 with a text body is RateLimitedError, with Retry-After in seconds or as a date", () => {
    const plain = classifyHttpFailure(429, RATE_LIMIT_TEXT, { "content-type": "text/plain" });
    expect(plain).toBeInstanceOf(RateLimitedError);
    expect((plain as RateLimitedError).retryAfterMs).toBeUndefined();
    expect(plain.message).toContain("Rate limit exceeded");
    const secs = classifyHttpFailure(429, RATE_LIMIT_TEXT, { "Retry-After": "3" });
    expect((secs as RateLimitedError).retryAfterMs).toBe(3000);
    const now = Date.parse("2025-01-01T00:00:00Z");
    const date = classifyHttpFailure(
      429,
      "",
      { "retry-after": "Wed, 01 Jan 2025 00:00:10 GMT" },
      { now },
    );
    expect((date as RateLimitedError).retryAfterMs).toBe(10_000);
  });

  it("5xx with an HTML page is a retryable server_error with a short text excerpt", () => {
    const html = `<!DOCTYPE html><html><head><style>body{color:red}</style><title>502 Bad Gateway</title></head><body><h1>Bad&nbsp;Gateway</h1>${"<p>x</p>".repeat(200)}</body></html>`;
    const err = classifyHttpFailure(502, html);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe("server_error");
    expect(err.message).toContain("502 Bad Gateway Bad Gateway");
    expect(err.message).not.toContain("<");
    expect(err.message).not.toContain("color:red");
    expect(err.message.length).toBeLessThan(300);
  });

  it("408 is retryable", () => {
    const err = classifyHttpFailure(408, "");
    expect(err.retryable).toBe(true);
  });

  it("400 invalidListId is list_not_found", () => {
    const err = classifyHttpFailure(
      400,
      '{"msg":"error.lists.invalidListId: 77","code":"BadParams"}',
    );
    expect(err).toBeInstanceOf(FatalError);
    expect((err as FatalError).code).toBe("list_not_found");
  });

  it("other 4xx are request_rejected, whatever the body", () => {
    for (const body of ['{"msg":"bad","code":"BadParams"}', "nope", "<b>no</b>", "", "{not json"]) {
      const err = classifyHttpFailure(400, body);
      expect(err).toBeInstanceOf(FatalError);
      expect((err as FatalError).code).toBe("request_rejected");
    }
    expect((classifyHttpFailure(409, "in use") as FatalError).code).toBe("request_rejected");
  });
});

describe("bodyExcerpt", () => {
  it("strips control characters and collapses whitespace", () => {
    expect(bodyExcerpt("a\u001b[31m\r\n\tb")).toBe("a [31m b");
  });
  it("says so when empty", () => {
    expect(bodyExcerpt("   ")).toBe("(empty body)");
  });
  it("prefers Iterable's code and msg", () => {
    expect(bodyExcerpt('{"code":"BadParams","msg":"listId missing"}')).toBe(
      "BadParams: listId missing",
    );
  });
});

describe("classifyBatch (property)", () => {
  const CATS = ["invalid", "notFound", "forgotten", "conflict", "invalidData"] as const;
  it("gives one outcome per record, in order, failed exactly when a failing array names it", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ hasEmail: fc.boolean(), hasUserId: fc.boolean(), upper: fc.boolean() }),
          {
            maxLength: 30,
          },
        ),
        fc.array(
          fc.record({
            index: fc.nat(),
            cat: fc.constantFrom(...CATS),
            field: fc.constantFrom("email", "userId"),
          }),
          { maxLength: 30 },
        ),
        fc.constantFrom("subscribe", "unsubscribe"),
        (shape, names, op) => {
          const sent: DeliveryRecord[] = shape.map((s, i) => ({
            key: `k${i}`,
            ...(s.hasEmail || !s.hasUserId
              ? { email: s.upper ? `User${i}@X.com` : `user${i}@x.com` }
              : {}),
            ...(s.hasUserId ? { userId: `id${i}` } : {}),
          }));
          const failedUpdates: Record<string, string[]> = {};
          const expectFailed = new Set<string>();
          for (const n of names) {
            const rec = sent[n.index % Math.max(1, sent.length)];
            if (!rec) continue;
            const value = n.field === "email" ? rec.email?.toLowerCase() : rec.userId;
            if (value === undefined) continue;
            const key = `${n.cat}${n.field === "email" ? "Emails" : "UserIds"}`;
            failedUpdates[key] = [...(failedUpdates[key] ?? []), value];
            if (n.cat !== "notFound" || op === "subscribe") expectFailed.add(rec.key);
          }
          const out = classifyBatch(
            op,
            sent,
            { successCount: 0, failCount: 0, failedUpdates },
            { updateExistingUsersOnly: false },
          );
          expect(out.map((o) => o.key)).toEqual(sent.map((r) => r.key));
          expect(out.every((o) => o.op === op)).toBe(true);
          expect(new Set(out.filter((o) => o.status === "failed").map((o) => o.key))).toEqual(
            expectFailed,
          );
        },
      ),
    );
  });
});
