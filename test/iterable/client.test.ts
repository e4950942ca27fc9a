/**
 * The client against the real emulator over HTTP on 127.0.0.1, faults included. Retry waits are
 * shrunk (baseMs 1) so the tests stay quick; nothing here asserts on timing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { AuthError, CancelledError, FatalError } from "../../src/errors.js";
import {
  type ClientExtras,
  IterableClient,
  type IterableClientOptions,
  subscribeBodyParts,
  unsubscribeBodyParts,
} from "../../src/iterable/client.js";
import type { RequestEvent } from "../../src/iterable/transport.js";
import type { BatchResult, DeliveryRecord, RecordOutcome } from "../../src/iterable/types.js";
import type { ProjectType } from "../../src/iterable/wire.js";

const KEY = "test-server-key-5f1c9a";
const FAST_RETRY = { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 300 };

let emulator: Emulator | undefined;
let client: IterableClient | undefined;

afterEach(async () => {
  await client?.close();
  await emulator?.close();
  client = undefined;
  emulator = undefined;
});

async function setup(
  projectType: ProjectType,
  opts: Partial<IterableClientOptions> & ClientExtras = {},
  emulatorOpts: { newListInvalidMs?: number } = {},
): Promise<{ em: Emulator; c: IterableClient; requests: RequestEvent[] }> {
  const em = await startEmulator({ port: 0, projectType, apiKey: KEY, ...emulatorOpts });
  emulator = em;
  const requests: RequestEvent[] = [];
  const c = new IterableClient({
    apiKey: KEY,
    baseUrl: em.url,
    projectType,
    retry: FAST_RETRY,
    timeoutMs: 5_000,
    ...opts,
    events: { onRequest: (e) => requests.push(e), ...opts.events },
  });
  client = c;
  return { em, c, requests };
}

async function all(results: AsyncIterable<BatchResult>): Promise<BatchResult[]> {
  const out: BatchResult[] = [];
  for await (const r of results) out.push(r);
  return out;
}

function outcomes(results: BatchResult[]): Map<string, RecordOutcome> {
  return new Map(results.flatMap((r) => r.outcomes).map((o) => [o.key, o]));
}

function codes(results: BatchResult[]): Record<string, string> {
  return Object.fromEntries(
    [...outcomes(results)].map(([k, o]) => [k, o.status === "succeeded" ? "ok" : o.code]),
  );
}

function emails(n: number, prefix = "user"): DeliveryRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    email: `${prefix}${i}@example.com`,
  }));
}

describe("IterableClient against the emulator", () => {
  it.each([
    ["email", (i: number) => ({ email: `p${i}@example.com` })],
    ["userId", (i: number) => ({ userId: `user-${i}` })],
    ["hybrid", (i: number) => (i % 2 ? { userId: `user-${i}` } : { email: `p${i}@example.com` })],
  ] as const)("manages a list in a %s project", async (projectType, identity) => {
    const { em, c } = await setup(projectType);
    const listId = await c.createList("VIP", "spend over 1k");
    const lists = await c.getLists();
    expect(lists.find((l) => l.id === listId)).toMatchObject({
      name: "VIP",
      description: "spend over 1k",
    });

    const records = Array.from({ length: 10 }, (_, i) => ({ key: `r${i}`, ...identity(i) }));
    const sub = await all(c.subscribe(listId, records));
    expect(Object.values(codes(sub))).toEqual(Array(10).fill("ok"));
    expect(await c.getListSize(listId)).toBe(10);
    expect(em.state.listSize(listId)).toBe(10);
    const users = await c.getListUsers(listId, { preferUserId: true });
    expect(users).toHaveLength(10);
    if (projectType !== "email") expect(users).toContain("user-1");

    const unsub = await all(c.unsubscribe(listId, records.slice(0, 4)));
    expect(Object.values(codes(unsub))).toEqual(Array(4).fill("ok"));
    expect(em.state.listSize(listId)).toBe(6);
    expect(em.stats.channelUnsubscribe).toEqual([false]);

    await c.deleteList(listId);
    expect((await c.getLists()).some((l) => l.id === listId)).toBe(false);
  });

  it("always sends channelUnsubscribe: false, and notFound on unsubscribe is success", async () => {
    const { em, c } = await setup("email", { batchSize: 3 });
    const listId = em.state.createList("L");
    const res = await all(c.unsubscribe(listId, emails(7, "nobody")));
    expect(Object.values(codes(res))).toEqual(Array(7).fill("ok"));
    expect(em.stats.channelUnsubscribe).toEqual([false, false, false]);
  });

  it("matches failures to records whatever the case of the email sent", async () => {
    const { em, c } = await setup("email");
    const listId = em.state.createList("L");
    em.state.forgetUser({ email: "gone@example.com" });
    const res = await all(
      c.subscribe(listId, [
        { key: "a", email: "Gone@Example.COM" },
        { key: "b", email: "fine@example.com" },
      ]),
    );
    expect(codes(res)).toEqual({ a: "forgotten_user", b: "ok" });
  });

  it("updateExistingUsersOnly: unknown users fail in userId projects", async () => {
    const { em, c } = await setup("userId");
    const listId = em.state.createList("L");
    em.state.addUser({ userId: "known" });
    const res = await all(
      c.subscribe(
        listId,
        [
          { key: "a", userId: "known" },
          { key: "b", userId: "unknown" },
        ],
        { updateExistingUsersOnly: true },
      ),
    );
    expect(codes(res)).toEqual({ a: "ok", b: "user_not_found" });
    expect(em.state.users().some((u) => u.userId === "unknown")).toBe(false);
  });

  it("updateExistingUsersOnly: ignored by email projects, which create the user", async () => {
    const { em, c } = await setup("email");
    const listId = em.state.createList("L");
    const res = await all(
      c.subscribe(listId, [{ key: "a", email: "new@example.com" }], {
        updateExistingUsersOnly: true,
      }),
    );
    expect(codes(res)).toEqual({ a: "ok" });
    expect(em.state.hasMember(listId, { email: "new@example.com" })).toBe(true);
  });

  it("reports invalid identifiers per record in a batch answered 200", async () => {
    const { em, c } = await setup("hybrid");
    const listId = em.state.createList("L");
    const res = await all(
      c.subscribe(listId, [
        { key: "a", userId: "ok-1" },
        { key: "b", userId: "bad id " },
        { key: "c", email: "not-an-email" },
      ]),
    );
    expect(codes(res)).toEqual({ a: "ok", b: "invalid_user_id", c: "invalid_email" });
  });

  it("retries a 429 with a text body, then succeeds", async () => {
    const limited: number[] = [];
    const { em, c, requests } = await setup("email", {
      events: { onRateLimited: (e) => limited.push(e.attempt) },
    });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "rateLimitText" }, { path: "/api/lists/subscribe" });
    const res = await all(c.subscribe(listId, emails(5)));
    expect(Object.values(codes(res))).toEqual(Array(5).fill("ok"));
    expect(limited).toEqual([1]);
    expect(requests.map((r) => [r.status, r.attempt])).toEqual([
      [429, 1],
      [200, 2],
    ]);
    expect(em.state.listSize(listId)).toBe(5);
  });

  it("retries a 5xx with an HTML body, then succeeds", async () => {
    const { em, c, requests } = await setup("email");
    const listId = em.state.createList("L");
    em.faults.enqueue(
      {
        kind: "status",
        status: 502,
        body: "<html><h1>Bad gateway</h1></html>",
        contentType: "text/html",
      },
      { path: "/api/lists/subscribe", times: 2 },
    );
    const res = await all(c.subscribe(listId, emails(3)));
    expect(Object.values(codes(res))).toEqual(["ok", "ok", "ok"]);
    expect(requests.map((r) => r.status)).toEqual([502, 502, 200]);
  });

  it("retries after a reset connection", async () => {
    const { em, c, requests } = await setup("email");
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "reset" }, { path: "/api/lists/subscribe" });
    const res = await all(c.subscribe(listId, emails(3)));
    expect(Object.values(codes(res))).toEqual(["ok", "ok", "ok"]);
    expect(requests.map((r) => r.status)).toEqual([undefined, 200]);
  });

  it("times out a hung request and retries it", async () => {
    const retries: string[] = [];
    const { em, c, requests } = await setup("email", {
      timeoutMs: 300,
      events: { onRetry: (e) => retries.push(e.reason) },
    });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "hang" }, { path: "/api/lists/subscribe" });
    const res = await all(c.subscribe(listId, emails(3)));
    expect(Object.values(codes(res))).toEqual(["ok", "ok", "ok"]);
    expect(requests.map((r) => r.status)).toEqual([undefined, 200]);
    expect(retries[0]).toContain("within 300 ms");
  });

  it("fails the batch's records once retries are used up, and keeps going", async () => {
    const { em, c } = await setup("email", {
      batchSize: 2,
      concurrency: 1,
      retry: { ...FAST_RETRY, maxAttempts: 3 },
    });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "status", status: 503 }, { path: "/api/lists/subscribe", times: 3 });
    const res = await all(c.subscribe(listId, emails(4)));
    const byKey = outcomes(res);
    expect(byKey.get("k0")).toMatchObject({
      status: "failed",
      code: "server_error",
      retryable: true,
    });
    expect(byKey.get("k1")).toMatchObject({ status: "failed", code: "server_error" });
    expect(byKey.get("k2")?.status).toBe("succeeded");
    expect(byKey.get("k3")?.status).toBe("succeeded");
    const failed = byKey.get("k0");
    expect(failed?.status === "failed" && failed.message).toContain("gave up after 3 attempts");
  });

  it("fails records with rate_limited when 429s never stop", async () => {
    const { em, c } = await setup("email", { retry: { ...FAST_RETRY, maxAttempts: 2 } });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "rateLimitText" }, { path: "/api/lists/subscribe", times: 2 });
    const res = await all(c.subscribe(listId, emails(2)));
    expect(codes(res)).toEqual({ k0: "rate_limited", k1: "rate_limited" });
  });

  it("fails a batch refused with another 4xx as request_rejected, without retrying", async () => {
    const { em, c, requests } = await setup("email");
    const listId = em.state.createList("L");
    em.faults.enqueue(
      { kind: "status", status: 400, body: '{"code":"BadParams","msg":"no good"}' },
      { path: "/api/lists/subscribe" },
    );
    const res = await all(c.subscribe(listId, emails(2)));
    const o = outcomes(res).get("k0");
    expect(o).toMatchObject({ status: "failed", code: "request_rejected", retryable: false });
    expect(o?.status === "failed" && o.message).toContain("BadParams: no good");
    expect(requests).toHaveLength(1);
  });

  it("turns a malformed 200 answer into failed records, not a crash", async () => {
    const { em, c } = await setup("email");
    const listId = em.state.createList("L");
    em.faults.enqueue(
      { kind: "status", status: 200, body: "<html>maintenance</html>", contentType: "text/html" },
      { path: "/api/lists/subscribe" },
    );
    em.faults.enqueue(
      { kind: "status", status: 200, body: '{"successCount":"many"}' },
      { path: "/api/lists/subscribe" },
    );
    const first = await all(c.subscribe(listId, emails(1)));
    const second = await all(c.subscribe(listId, emails(1)));
    for (const res of [first, second]) {
      expect(outcomes(res).get("k0")).toMatchObject({ status: "failed", code: "server_error" });
    }
    await expect(
      (async () => {
        em.faults.enqueue({ kind: "status", status: 200, body: "nope" }, { path: "/api/lists" });
        return await c.getLists();
      })(),
    ).rejects.toThrow(/not JSON/);
  });

  it("refuses a bad key with AuthError whose message never holds the key", async () => {
    const em = await startEmulator({ port: 0, projectType: "email", apiKey: KEY });
    emulator = em;
    const wrongKey = "wrong-key-0123456789";
    const c = new IterableClient({
      apiKey: wrongKey,
      baseUrl: em.url,
      projectType: "email",
      retry: FAST_RETRY,
    });
    client = c;
    const err = await c.getLists().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).message).toContain("401 BadApiKey");
    expect((err as AuthError).message).not.toContain(wrongKey);
    const listId = em.state.createList("L");
    await expect(all(c.subscribe(listId, emails(3)))).rejects.toBeInstanceOf(AuthError);
    expect(em.state.listSize(listId)).toBe(0);
  });

  it("retries invalidListId for a new list, then succeeds", async () => {
    const { em, c, requests } = await setup("email", {
      retry: { ...FAST_RETRY, listNotFoundRetryMs: 10_000 },
    });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "invalidListId" }, { path: "/api/lists/subscribe", times: 3 });
    const res = await all(c.subscribe(listId, emails(2)));
    expect(codes(res)).toEqual({ k0: "ok", k1: "ok" });
    expect(requests.map((r) => r.status)).toEqual([400, 400, 400, 200]);
  });

  it("stops with list_not_found once the retry window is over", async () => {
    const { c, requests } = await setup("email", {
      retry: { ...FAST_RETRY, listNotFoundRetryMs: 200 },
    });
    const err = await all(c.subscribe(987654, emails(2))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
    expect((err as FatalError).code).toBe("list_not_found");
    expect(requests.length).toBeGreaterThan(1);
  });

  it("delivers 5,000 records through 4 batches in flight, every one landing", async () => {
    const { em, c, requests } = await setup("hybrid", { concurrency: 4 });
    const listId = await c.createList("big");
    async function* source(): AsyncGenerator<DeliveryRecord> {
      for (let i = 0; i < 5000; i++) {
        yield i % 3 === 0
          ? { key: String(i), userId: `u${i}` }
          : { key: String(i), email: `m${i}@example.com`, userId: `u${i}` };
      }
    }
    const res = await all(c.subscribe(listId, source()));
    const byKey = outcomes(res);
    expect(byKey.size).toBe(5000);
    expect([...byKey.values()].every((o) => o.status === "succeeded")).toBe(true);
    expect(em.state.listSize(listId)).toBe(5000);
    expect(requests.filter((r) => r.path === "/api/lists/subscribe")).toHaveLength(5);
  });

  it("reads the source no more than one batch ahead of the batches in flight", async () => {
    const { em, c } = await setup("email", { batchSize: 10, concurrency: 2 });
    const listId = em.state.createList("L");
    let pulled = 0;
    async function* source(): AsyncGenerator<DeliveryRecord> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield { key: String(i), email: `s${i}@example.com` };
      }
    }
    for await (const _ of c.subscribe(listId, source())) break;
    // Two batches in flight, a third sent in the first one's slot before its answer is handed
    // over, a fourth read ahead, one record of look-ahead in the batching.
    expect(pulled).toBeLessThanOrEqual(41);
  });

  it("reports a record too large for one request instead of sending it", async () => {
    const { em, c, requests } = await setup("userId", { maxBatchBytes: 300 });
    const listId = em.state.createList("L");
    const res = await all(
      c.subscribe(listId, [
        { key: "small", userId: "u1" },
        { key: "huge", userId: "x".repeat(400) },
      ]),
    );
    expect(codes(res)).toEqual({ small: "ok", huge: "request_rejected" });
    expect(requests).toHaveLength(1);
  });

  it("stops with CancelledError when the caller aborts", async () => {
    const { em, c } = await setup("email", { timeoutMs: 10_000 });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "hang" }, { path: "/api/lists/subscribe" });
    const ctrl = new AbortController();
    const pending = all(c.subscribe(listId, emails(2), { signal: ctrl.signal }));
    setTimeout(() => ctrl.abort(), 50);
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
  });

  it("fromDestination uses baseUrl over the data centre", async () => {
    const em = await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY });
    emulator = em;
    const c = IterableClient.fromDestination({
      type: "iterable",
      apiKey: KEY,
      dataCenter: "EU",
      projectType: "hybrid",
      baseUrl: em.url,
      batchSize: 1000,
      maxBatchBytes: 4_000_000,
      concurrency: 4,
      timeoutMs: 30_000,
    });
    client = c;
    expect(await c.getLists()).toEqual([]);
  });
});

describe("subscribeBodies and unsubscribeBodies (JSON built by the caller)", () => {
  const bodies = (records: DeliveryRecord[], size: number) =>
    (async function* () {
      for (let i = 0; i < records.length; i += size) {
        const part = records.slice(i, i + size);
        yield {
          json: part.map((r) => JSON.stringify({ email: r.email, userId: r.userId })).join(","),
          count: part.length,
          tag: i / size,
          records: async () => {
            reads.push(i / size);
            return part;
          },
        };
      }
    })();
  let reads: number[] = [];
  const take = async <T>(it: AsyncIterable<T>) => {
    const out: T[] = [];
    for await (const x of it) out.push(x);
    return out;
  };

  it("sends each body as one request; a clean answer reads no records", async () => {
    reads = [];
    const { em, c, requests } = await setup("email", { concurrency: 2 });
    const listId = em.state.createList("L");
    const records = Array.from({ length: 7 }, (_, i) => ({
      key: `k${i}`,
      email: `p${i}@example.com`,
    }));
    const results = await take(c.subscribeBodies(listId, bodies(records, 3)));
    expect(results.map((r) => [r.tag, r.count, r.result]).sort()).toEqual([
      [0, 3, null],
      [1, 3, null],
      [2, 1, null],
    ]);
    expect(reads).toEqual([]);
    expect(requests.filter((r) => r.path.endsWith("/subscribe"))).toHaveLength(3);
    expect(em.state.listSize(listId)).toBe(7);
  });

  it("a whole body (subscribeBodyParts around the subscribers) is the request body", async () => {
    reads = [];
    const { em, c, requests } = await setup("hybrid");
    const listId = em.state.createList("L");
    const { head, tail } = subscribeBodyParts(listId, false);
    const whole = Buffer.from(
      `${head}{"email":"w1@example.com","userId":"w1"},{"email":"w2@example.com"}${tail}`,
    );
    expect(JSON.parse(whole.toString())).toEqual({
      listId,
      subscribers: [{ email: "w1@example.com", userId: "w1" }, { email: "w2@example.com" }],
    });
    const one = () =>
      (async function* () {
        yield { json: whole, whole: true, count: 2, tag: 0, records: async () => [] };
      })();
    expect((await take(c.subscribeBodies(listId, one()))).map((r) => r.result)).toEqual([null]);
    expect(em.state.listSize(listId)).toBe(2);
    // built for another list, or another setting: refused, nothing sent
    const other = em.state.createList("M");
    await expect(take(c.subscribeBodies(other, one()))).rejects.toThrow(/envelope/);
    await expect(
      take(c.subscribeBodies(listId, one(), { updateExistingUsersOnly: true })),
    ).rejects.toThrow(/envelope/);
    expect(requests.filter((r) => r.path.endsWith("/subscribe"))).toHaveLength(1);
    expect(reads).toEqual([]);
  });

  it("an answer that names failures is classified per record, read from the caller", async () => {
    reads = [];
    const { em, c } = await setup("hybrid");
    const listId = em.state.createList("L");
    em.state.forgetUser({ email: "gone@example.com" });
    const records = [
      { key: "a", email: "a@example.com", userId: "ua" },
      { key: "gone", email: "gone@example.com" },
    ];
    const [r] = await take(c.subscribeBodies(listId, bodies(records, 5)));
    expect(reads).toEqual([0]);
    const byKey = new Map(r?.result?.outcomes.map((o) => [o.key, o]));
    expect(byKey.get("a")?.status).toBe("succeeded");
    expect(byKey.get("gone")).toMatchObject({ status: "failed", code: "forgotten_user" });
  });

  it("a request that fails after retries fails every record of the batch", async () => {
    reads = [];
    const { em, c } = await setup("email", { retry: { ...FAST_RETRY, maxAttempts: 2 } });
    const listId = em.state.createList("L");
    em.faults.enqueue({ kind: "status", status: 503 }, { path: "/api/lists/subscribe", times: 5 });
    const records = [{ key: "a", email: "a@example.com" }];
    const [r] = await take(c.subscribeBodies(listId, bodies(records, 5)));
    expect(r?.result?.outcomes).toEqual([
      expect.objectContaining({
        key: "a",
        status: "failed",
        code: "server_error",
        retryable: true,
      }),
    ]);
  });

  it("a body over the byte limit is sent as records, cut to size", async () => {
    reads = [];
    const { em, c, requests } = await setup("email", { maxBatchBytes: 200 });
    const listId = em.state.createList("L");
    const records = Array.from({ length: 6 }, (_, i) => ({
      key: `k${i}`,
      email: `person${i}@example.com`,
    }));
    const [r] = await take(c.subscribeBodies(listId, bodies(records, 6)));
    expect(reads).toEqual([0]);
    expect(r?.result?.outcomes.map((o) => o.status)).toEqual(Array(6).fill("succeeded"));
    expect(requests.filter((q) => q.path.endsWith("/subscribe")).length).toBeGreaterThan(1);
    expect(em.state.listSize(listId)).toBe(6);
    expect(c.bodyBatchRows(50)).toBe(1);
  });

  it("unsubscribeBodies: a whole body opens with unsubscribeBodyParts, never a channel-wide unsubscribe", async () => {
    reads = [];
    const { em, c, requests } = await setup("hybrid");
    const listId = em.state.createList("L");
    const members = [
      { key: "u:w1", email: "w1@example.com", userId: "w1" },
      { key: "e:w2@example.com", email: "w2@example.com" },
      { key: "u:w3", userId: "w3" },
    ];
    await all(c.subscribe(listId, members));
    const { head, tail } = unsubscribeBodyParts(listId);
    const whole = Buffer.from(
      `${head}{"email":"w1@example.com","userId":"w1"},{"email":"w2@example.com"}${tail}`,
    );
    expect(JSON.parse(whole.toString())).toEqual({
      listId,
      channelUnsubscribe: false,
      subscribers: [{ email: "w1@example.com", userId: "w1" }, { email: "w2@example.com" }],
    });
    const one = (json: Uint8Array) =>
      (async function* () {
        yield { json, whole: true, count: 2, tag: 0, records: async () => [] };
      })();
    expect((await take(c.unsubscribeBodies(listId, one(whole)))).map((r) => r.result)).toEqual([
      null,
    ]);
    expect(em.state.members(listId).map((m) => m.userId)).toEqual(["w3"]);
    expect(em.stats.channelUnsubscribe.at(-1)).toBe(false);
    // a subscribe body is refused, nothing sent
    const sub = subscribeBodyParts(listId, false);
    await expect(
      take(c.unsubscribeBodies(listId, one(Buffer.from(`${sub.head}{"userId":"w3"}${sub.tail}`)))),
    ).rejects.toThrow(/unsubscribe body does not open/);
    expect(requests.filter((r) => r.path.endsWith("/unsubscribe"))).toHaveLength(1);
    expect(reads).toEqual([]);
  });

  it("unsubscribeBodies: an answer that names failures is classified per record", async () => {
    reads = [];
    const { em, c } = await setup("hybrid");
    const listId = em.state.createList("L");
    await all(c.subscribe(listId, [{ key: "a", email: "a@example.com", userId: "ua" }]));
    em.state.forgetUser({ email: "gone@example.com" });
    const records = [
      { key: "a", email: "a@example.com", userId: "ua" },
      { key: "gone", email: "gone@example.com" },
      { key: "never", email: "never@example.com" },
    ];
    const [r] = await take(c.unsubscribeBodies(listId, bodies(records, 5)));
    expect(reads).toEqual([0]);
    const byKey = new Map(r?.result?.outcomes.map((o) => [o.key, o]));
    expect(byKey.get("a")?.status).toBe("succeeded");
    expect(byKey.get("gone")).toMatchObject({ status: "failed", code: "forgotten_user" });
    // not on the list: as a mirror wants it
    expect(byKey.get("never")?.status).toBe("succeeded");
    expect(r?.result?.op).toBe("unsubscribe");
    expect(em.state.listSize(listId)).toBe(0);
  });
});
