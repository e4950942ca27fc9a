import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import { call, callJson, start, subscribe, unsubscribe } from "./helpers.js";

describe("admin over HTTP", () => {
  let em: Emulator;
  beforeAll(async () => {
    em = await start({ projectType: "hybrid" });
  });
  afterAll(async () => {
    await em.close();
  });

  it("seeds users, reads members, forgets and resets", async () => {
    const list = em.state.createList("L");
    const seeded = await callJson(em, "POST", "/_emulator/users", {
      email: "Seed@example.com",
      userId: "s1",
    });
    expect(seeded).toEqual({ status: 200, json: { email: "seed@example.com", userId: "s1" } });

    const b = await subscribe(em, list, [{ userId: "s1" }, { email: "other@example.com" }]);
    expect(b.successCount).toBe(2);
    const members = await callJson(em, "GET", `/_emulator/lists/${list}/members`);
    expect(members.json).toEqual([
      { email: "seed@example.com", userId: "s1" },
      { email: "other@example.com" },
    ]);

    expect(
      (await call(em, "POST", "/_emulator/forget", { email: "other@example.com" })).status,
    ).toBe(200);
    expect((await callJson(em, "GET", `/_emulator/lists/${list}/members`)).json).toEqual([
      { email: "seed@example.com", userId: "s1" },
    ]);
    const again = await subscribe(em, list, [{ email: "other@example.com" }]);
    expect(again.failedUpdates.forgottenEmails).toEqual(["other@example.com"]);

    expect((await call(em, "POST", "/_emulator/reset")).status).toBe(200);
    expect(em.state.lists()).toEqual([]);
    expect(em.state.users()).toEqual([]);
    expect(em.stats.requests).toBe(0);
  });

  it("refuses a user whose identifiers belong to two users with 409", async () => {
    em.state.reset();
    em.state.addUser({ email: "a@example.com", userId: "a" });
    em.state.addUser({ email: "b@example.com", userId: "b" });
    const r = await call(em, "POST", "/_emulator/users", { email: "a@example.com", userId: "b" });
    expect(r.status).toBe(409);
  });

  it("refuses an empty identity with BadParams", async () => {
    const r = await callJson<{ code: string }>(em, "POST", "/_emulator/users", {});
    expect(r.status).toBe(400);
    expect(r.json.code).toBe("BadParams");
  });

  it("answers 404 for the members of an unknown list", async () => {
    expect((await call(em, "GET", "/_emulator/lists/4242/members")).status).toBe(404);
  });

  it("queues faults, flat or wrapped, and clears them", async () => {
    em.state.reset();
    const list = em.state.createList("L");
    const queued = await call(em, "POST", "/_emulator/faults", {
      kind: "status",
      status: 502,
      path: "/api/lists/subscribe",
      times: 2,
    });
    expect(queued.status).toBe(200);
    await call(em, "POST", "/_emulator/faults", { fault: { kind: "rateLimitText" } });
    const send = () => call(em, "POST", "/api/lists/subscribe", { listId: list, subscribers: [] });
    expect((await send()).status).toBe(502);
    expect((await send()).status).toBe(502);
    expect((await send()).status).toBe(429);
    expect((await send()).status).toBe(200);

    await call(em, "POST", "/_emulator/faults", { kind: "reset" });
    expect((await call(em, "DELETE", "/_emulator/faults")).status).toBe(200);
    expect((await send()).status).toBe(200);

    const bad = await callJson<{ code: string }>(em, "POST", "/_emulator/faults", { kind: "boom" });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe("BadParams");
  });

  it("serves stats with the channelUnsubscribe values", async () => {
    await call(em, "POST", "/_emulator/reset");
    const list = em.state.createList("L");
    await subscribe(em, list, [{ email: "a@example.com" }]);
    await unsubscribe(em, list, [{ email: "a@example.com" }]);
    const stats = await callJson<{
      requests: number;
      subscribers: number;
      byPath: Record<string, number>;
      channelUnsubscribe: (boolean | null)[];
    }>(em, "GET", "/_emulator/stats");
    expect(stats.json).toMatchObject({
      requests: 2,
      subscribers: 2,
      byPath: { "/api/lists/subscribe": 1, "/api/lists/unsubscribe": 1 },
      channelUnsubscribe: [false],
    });
  });
});

describe("state file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "emulator-state-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("saves on close and loads on start", async () => {
    const statePath = join(dir, "state.json");
    const first = await start({ projectType: "hybrid", statePath });
    const list = first.state.createList("Kept", "survives restarts");
    await subscribe(first, list, [
      { userId: "u1", email: "one@example.com" },
      { email: "two@example.com" },
    ]);
    first.state.addUser({ email: "forgot@example.com" });
    first.state.forgetUser({ email: "forgot@example.com" });
    await first.close();

    const second = await start({ projectType: "hybrid", statePath });
    try {
      expect(second.state.lists()).toEqual(first.state.lists());
      expect(second.state.members(list)).toEqual([
        { email: "one@example.com", userId: "u1" },
        { email: "two@example.com" },
      ]);
      const b = await subscribe(second, list, [{ email: "forgot@example.com" }]);
      expect(b.failedUpdates.forgottenEmails).toEqual(["forgot@example.com"]);
      const next = second.state.createList("Next");
      expect(next).toBeGreaterThan(list);
    } finally {
      await second.close();
    }
  });

  it("starts empty when the file does not exist yet", async () => {
    const em = await start({ statePath: join(dir, "absent.json") });
    expect(em.state.lists()).toEqual([]);
    await em.close();
    expect(JSON.parse(await readFile(join(dir, "absent.json"), "utf8"))).toMatchObject({
      version: 1,
      projectType: "hybrid",
    });
  });

  it("refuses a file that is not a state file, or one of another project type", async () => {
    const garbage = join(dir, "garbage.json");
    await writeFile(garbage, '{"hello": 1}');
    await expect(start({ statePath: garbage })).rejects.toThrow(/not an emulator state file/);

    const emailState = join(dir, "email.json");
    const em = await start({ projectType: "email", statePath: emailState });
    await em.close();
    await expect(start({ projectType: "hybrid", statePath: emailState })).rejects.toThrow(
      /email project/,
    );
  });
});
