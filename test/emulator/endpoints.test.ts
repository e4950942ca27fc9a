import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import {
  FAILED_UPDATE_KEYS,
  GetListsResponse,
  IterableApiResponse,
  UserBulkUpdateListResponse,
} from "../../src/iterable/wire.js";
import { type Bulk, call, callJson, KEY, start, subscribe } from "./helpers.js";

let em: Emulator;
beforeAll(async () => {
  em = await start({ projectType: "hybrid" });
});
afterAll(async () => {
  await em.close();
});
beforeEach(() => {
  em.state.reset();
  em.faults.clear();
});

describe("auth", () => {
  it.each([
    ["missing", null],
    ["wrong", "not-the-key"],
  ])("answers 401 BadApiKey to a %s key", async (_, key) => {
    const r = await call(em, "GET", "/api/lists", undefined, key);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.text)).toEqual({
      code: "BadApiKey",
      msg: "Disabled API key or insufficient privileges",
      params: null,
    });
  });

  it("guards the admin API with the same key", async () => {
    expect((await call(em, "GET", "/_emulator/stats", undefined, "nope")).status).toBe(401);
    expect((await call(em, "GET", "/_emulator/stats")).status).toBe(200);
  });

  it("accepts the key", async () => {
    const r = await call(em, "GET", "/api/lists", undefined, KEY);
    expect(r.status).toBe(200);
  });
});

describe("lists", () => {
  it("creates, lists and deletes lists", async () => {
    const created = await callJson<{ listId: number }>(em, "POST", "/api/lists", {
      name: "VIP",
      description: "Spend over 1k",
    });
    expect(created.status).toBe(200);
    const id = created.json.listId;
    expect(Number.isInteger(id)).toBe(true);

    const listed = await callJson(em, "GET", "/api/lists");
    const lists = GetListsResponse.parse(listed.json).lists;
    expect(lists).toHaveLength(1);
    expect(lists[0]).toMatchObject({
      id,
      name: "VIP",
      description: "Spend over 1k",
      listType: "Standard",
    });
    expect(typeof lists[0]?.createdAt).toBe("number");

    const deleted = await callJson(em, "DELETE", `/api/lists/${id}`);
    expect(deleted.status).toBe(200);
    expect(IterableApiResponse.parse(deleted.json).code).toBe("Success");
    expect(em.state.lists()).toEqual([]);
  });

  it("does not refuse a duplicate name, as Iterable does not", async () => {
    const a = await callJson<{ listId: number }>(em, "POST", "/api/lists", { name: "Same" });
    const b = await callJson<{ listId: number }>(em, "POST", "/api/lists", { name: "Same" });
    expect(a.json.listId).not.toBe(b.json.listId);
  });

  it("refuses a list without a name with BadParams", async () => {
    const r = await callJson<{ code: string }>(em, "POST", "/api/lists", { description: "x" });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe("BadParams");
  });

  it("answers invalidListId for an unknown list on every list call", async () => {
    const calls: [string, string, unknown][] = [
      ["POST", "/api/lists/subscribe", { listId: 999, subscribers: [{ email: "a@b.com" }] }],
      ["POST", "/api/lists/unsubscribe", { listId: 999, subscribers: [{ email: "a@b.com" }] }],
      ["GET", "/api/lists/getUsers?listId=999", undefined],
      ["GET", "/api/lists/999/size", undefined],
      ["DELETE", "/api/lists/999", undefined],
    ];
    for (const [method, path, body] of calls) {
      const r = await callJson<{ code: string; msg: string }>(em, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(400);
      expect(r.json.code).toBe("BadParams");
      expect(r.json.msg).toContain("error.lists.invalidListId");
    }
  });
});

describe("subscribe and reads", () => {
  it("answers every failedUpdates array, the deprecated copies and the field arrays", async () => {
    const id = em.state.createList("L");
    const b = await subscribe(em, id, [{ email: "a@example.com" }]);
    expect(UserBulkUpdateListResponse.safeParse(b).success).toBe(true);
    expect(Object.keys(b.failedUpdates).sort()).toEqual([...FAILED_UPDATE_KEYS].sort());
    expect(b).toMatchObject({
      successCount: 1,
      failCount: 0,
      invalidEmails: [],
      invalidUserIds: [],
      createdFields: [],
      filteredOutFields: [],
    });
  });

  it("reports invalid identifiers in failedUpdates and the deprecated top-level arrays", async () => {
    const id = em.state.createList("L");
    const b = await subscribe(em, id, [
      { email: "not an email" },
      { userId: " padded" },
      { email: "ok@example.com" },
    ]);
    expect(b.successCount).toBe(1);
    expect(b.failCount).toBe(2);
    expect(b.failedUpdates.invalidEmails).toEqual(["not an email"]);
    expect(b.failedUpdates.invalidUserIds).toEqual([" padded"]);
    expect(b.invalidEmails).toEqual(["not an email"]);
    expect(b.invalidUserIds).toEqual([" padded"]);
  });

  it("serves getUsers as text, one identifier a line, and the size as a plain string", async () => {
    const id = em.state.createList("L");
    await subscribe(em, id, [
      { email: "One@Example.com", userId: "u1" },
      { email: "two@example.com" },
      { userId: "u3" },
    ]);
    const users = await call(em, "GET", `/api/lists/getUsers?listId=${id}`);
    expect(users.status).toBe(200);
    expect(users.contentType).toMatch(/^text\/plain/);
    expect(users.text.split("\n").sort()).toEqual(["one@example.com", "two@example.com", "u3"]);

    const preferred = await call(em, "GET", `/api/lists/getUsers?listId=${id}&preferUserId=true`);
    expect(preferred.text.split("\n").sort()).toEqual(["two@example.com", "u1", "u3"]);

    const size = await call(em, "GET", `/api/lists/${id}/size`);
    expect(size.status).toBe(200);
    expect(size.text).toBe("3");
  });

  it("answers BadJsonBody to a body that is not JSON", async () => {
    const r = await callJson<{ code: string }>(em, "POST", "/api/lists/subscribe", "{nope");
    expect(r.status).toBe(400);
    expect(r.json.code).toBe("BadJsonBody");
  });

  it("answers BadParams to a body of the wrong shape and changes nothing", async () => {
    const id = em.state.createList("L");
    const r = await callJson<{ code: string }>(em, "POST", "/api/lists/subscribe", {
      listId: id,
      subscribers: [{ email: "a@example.com" }, { email: 42 }],
    });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe("BadParams");
    expect(em.state.members(id)).toEqual([]);
  });

  it("answers 404 JSON to unknown routes", async () => {
    const r = await callJson<{ code: string }>(em, "GET", "/api/users/get");
    expect(r.status).toBe(404);
    expect(r.json.code).toBe("NotFound");
    expect((await call(em, "PUT", "/api/lists/subscribe", {})).status).toBe(404);
  });

  it("counts requests and subscribers per path", async () => {
    const id = em.state.createList("L");
    const before = em.stats.byPath["/api/lists/subscribe"] ?? 0;
    const subscribersBefore = em.stats.subscribers;
    await subscribe(em, id, [{ email: "a@example.com" }, { email: "b@example.com" }]);
    await call(em, "GET", `/api/lists/${id}/size`);
    expect(em.stats.byPath["/api/lists/subscribe"]).toBe(before + 1);
    expect(em.stats.byPath["/api/lists/{id}/size"]).toBeGreaterThanOrEqual(1);
    expect(em.stats.subscribers).toBe(subscribersBefore + 2);
  });

  it("records the channelUnsubscribe each unsubscribe carried", async () => {
    const id = em.state.createList("L");
    const body = (extra: object) => ({ listId: id, subscribers: [{ email: "a@x.com" }], ...extra });
    await call(em, "POST", "/api/lists/unsubscribe", body({ channelUnsubscribe: false }));
    await call(em, "POST", "/api/lists/unsubscribe", body({}));
    expect(em.stats.channelUnsubscribe.slice(-2)).toEqual([false, undefined]);
  });

  it("keeps answering on one keep-alive connection", async () => {
    const id = em.state.createList("L");
    const results: Bulk[] = [];
    for (let i = 0; i < 20; i++) results.push(await subscribe(em, id, [{ email: `k${i}@x.com` }]));
    expect(results.every((r) => r.successCount === 1)).toBe(true);
    expect(em.state.members(id)).toHaveLength(20);
  });
});
