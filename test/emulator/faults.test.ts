import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { RATE_LIMIT_TEXT } from "../../src/iterable/wire.js";
import { call, callJson, KEY, start } from "./helpers.js";

let em: Emulator | undefined;
afterEach(async () => {
  await em?.close();
  em = undefined;
});

const body = (listId: number) => ({ listId, subscribers: [{ email: "a@example.com" }] });

describe("scripted faults", () => {
  it("answers a queued status with its body, then recovers", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue(
      { kind: "status", status: 503, body: "busy", contentType: "text/plain" },
      { path: "/api/lists/subscribe", times: 2 },
    );
    for (let i = 0; i < 2; i++) {
      const r = await call(em, "POST", "/api/lists/subscribe", body(list));
      expect(r.status).toBe(503);
      expect(r.text).toBe("busy");
      expect(r.contentType).toBe("text/plain");
    }
    expect((await call(em, "POST", "/api/lists/subscribe", body(list))).status).toBe(200);
  });

  it("applies a fault only to its path", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue({ kind: "status", status: 500 }, { path: "/api/lists/unsubscribe" });
    expect((await call(em, "POST", "/api/lists/subscribe", body(list))).status).toBe(200);
    const r = await callJson<{ code: string }>(em, "POST", "/api/lists/unsubscribe", body(list));
    expect(r.status).toBe(500);
    expect(r.json.code).toBe("GenericError");
  });

  it("matches a path template with {id}", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue({ kind: "status", status: 502 }, { path: "/api/lists/{id}/size" });
    expect((await call(em, "GET", `/api/lists/${list}/size`)).status).toBe(502);
  });

  it("answers 429 with Iterable's text body and an optional Retry-After", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue({ kind: "rateLimitText" });
    em.faults.enqueue({ kind: "rateLimitText", retryAfterSeconds: 3 });
    const a = await call(em, "POST", "/api/lists/subscribe", body(list));
    expect(a.status).toBe(429);
    expect(a.contentType).toMatch(/^text\/plain/);
    expect(a.text).toBe(RATE_LIMIT_TEXT);
    expect(a.headers.get("retry-after")).toBeNull();
    const b = await call(em, "POST", "/api/lists/subscribe", body(list));
    expect(b.status).toBe(429);
    expect(b.headers.get("retry-after")).toBe("3");
  });

  it("drops the connection without answering on reset", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue({ kind: "reset" });
    await expect(call(em, "POST", "/api/lists/subscribe", body(list))).rejects.toThrow();
    expect(em.state.members(list)).toEqual([]);
    expect((await call(em, "POST", "/api/lists/subscribe", body(list))).status).toBe(200);
  });

  it("never answers on hang, until the client gives up", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue({ kind: "hang" });
    const res = fetch(`${em.url}/api/lists/subscribe`, {
      method: "POST",
      headers: { "Api-Key": KEY, "Content-Type": "application/json" },
      body: JSON.stringify(body(list)),
      signal: AbortSignal.timeout(300),
    });
    await expect(res).rejects.toThrow(/abort|timeout/i);
    expect(em.state.members(list)).toEqual([]);
  });

  it("closes while a request hangs", async () => {
    em = await start();
    em.faults.enqueue({ kind: "hang" });
    const pending = new Promise<string>((resolve) => {
      const req = http.request(`${em?.url}/api/lists`, { headers: { "Api-Key": KEY } });
      req.on("error", (err) => resolve(err.message));
      req.on("response", () => resolve("answered"));
      req.end();
    });
    while ((em.stats.faultsInjected ?? 0) === 0) await new Promise((r) => setTimeout(r, 5));
    await em.close();
    em = undefined;
    expect(await pending).not.toBe("answered");
  });

  it("answers invalidListId for an existing list", async () => {
    em = await start();
    const list = em.state.createList("L");
    em.faults.enqueue({ kind: "invalidListId" });
    const r = await callJson<{ code: string; msg: string }>(
      em,
      "POST",
      "/api/lists/subscribe",
      body(list),
    );
    expect(r.status).toBe(400);
    expect(r.json.code).toBe("BadParams");
    expect(r.json.msg).toContain("error.lists.invalidListId");
  });

  it("clears queued faults", async () => {
    em = await start();
    em.faults.enqueue({ kind: "status", status: 500 }, { times: 5 });
    em.faults.clear();
    expect((await call(em, "GET", "/api/lists")).status).toBe(200);
  });

  it("refuses a malformed fault", async () => {
    em = await start();
    const faults = em.faults;
    expect(() => faults.enqueue({ kind: "status" } as never)).toThrow();
  });
});

describe("options", () => {
  it("answers excess subscribe/unsubscribe requests 429 with the text body", async () => {
    em = await start({ rateLimit: 1 });
    const list = em.state.createList("L");
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        call(em as Emulator, "POST", "/api/lists/subscribe", body(list)),
      ),
    );
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]?.text).toBe(RATE_LIMIT_TEXT);
    expect(limited[0]?.contentType).toMatch(/^text\/plain/);
    expect(answers.some((a) => a.status === 200)).toBe(true);
    expect(em.stats.rateLimited).toBe(limited.length);
    // Other endpoints are outside the bucket.
    expect((await call(em, "GET", "/api/lists")).status).toBe(200);
  });

  it("fails every subscribe with a 500 or a reset at faultRate 1, and nothing else", async () => {
    em = await start({ faultRate: 1 });
    const list = em.state.createList("L");
    for (let i = 0; i < 6; i++) {
      const outcome = await call(em as Emulator, "POST", "/api/lists/subscribe", body(list)).then(
        (r) => r.status,
        () => "reset",
      );
      expect([500, "reset"]).toContain(outcome);
    }
    expect(em.state.members(list)).toEqual([]);
    expect((await call(em, "GET", "/api/lists")).status).toBe(200);
  });

  it("answers with added latency", async () => {
    em = await start({ latencyMs: 20 });
    expect((await call(em, "GET", "/api/lists")).status).toBe(200);
  });

  it("answers invalidListId for a list created within newListInvalidMs", async () => {
    em = await start({ newListInvalidMs: 60_000 });
    const created = await callJson<{ listId: number }>(em, "POST", "/api/lists", { name: "new" });
    const r = await callJson<{ msg: string }>(
      em,
      "POST",
      "/api/lists/subscribe",
      body(created.json.listId),
    );
    expect(r.status).toBe(400);
    expect(r.json.msg).toContain("error.lists.invalidListId");
  });

  it("serves a list once newListInvalidMs has passed", async () => {
    em = await start({ newListInvalidMs: 1 });
    const list = em.state.createList("L");
    await new Promise((r) => setTimeout(r, 20));
    expect((await call(em, "POST", "/api/lists/subscribe", body(list))).status).toBe(200);
  });
});
