import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.js";
import type { ProjectType } from "../../src/iterable/wire.js";
import { failures, start, subscribe, unsubscribe } from "./helpers.js";

const emulators = new Map<ProjectType, Emulator>();
beforeAll(async () => {
  for (const projectType of ["email", "userId", "hybrid"] as const) {
    emulators.set(projectType, await start({ projectType }));
  }
});
afterAll(async () => {
  for (const em of emulators.values()) await em.close();
});

/** A fresh list in a fresh project of the given type. */
function project(projectType: ProjectType): { em: Emulator; list: number } {
  const em = emulators.get(projectType);
  if (!em) throw new Error(`no ${projectType} emulator`);
  em.state.reset();
  return { em, list: em.state.createList("L") };
}

describe("every project type", () => {
  it.each(["email", "userId", "hybrid"] as const)(
    "%s: forgotten users are refused and never recreated",
    async (type) => {
      const { em, list } = project(type);
      em.state.addUser({ email: "gone@example.com", userId: "gone" });
      em.state.forgetUser(type === "email" ? { email: "gone@example.com" } : { userId: "gone" });
      const b = await subscribe(em, list, [{ email: "gone@example.com" }, { userId: "gone" }]);
      expect(b.successCount).toBe(0);
      expect(failures(b)).toEqual({
        forgottenEmails: ["gone@example.com"],
        forgottenUserIds: ["gone"],
      });
      expect(em.state.users()).toEqual([]);
      expect(em.state.members(list)).toEqual([]);
    },
  );

  it.each(["email", "userId", "hybrid"] as const)(
    "%s: invalid emails and userIds are refused",
    async (type) => {
      const { em, list } = project(type);
      const long = "x".repeat(53);
      const b = await subscribe(em, list, [
        { email: "no-at-sign" },
        { email: "a@b.invalidtld" },
        { userId: "" },
        { userId: long },
        { userId: "trailing " },
        { userId: "caf\u00e9" },
        { userId: "tab\there" },
      ]);
      expect(b.successCount).toBe(0);
      expect(b.failCount).toBe(7);
      expect(b.failedUpdates.invalidEmails).toEqual(["no-at-sign", "a@b.invalidtld"]);
      expect(b.failedUpdates.invalidUserIds).toEqual([
        "",
        long,
        "trailing ",
        "caf\u00e9",
        "tab\there",
      ]);
    },
  );

  it.each(["email", "userId", "hybrid"] as const)(
    "%s: unsubscribe removes from this list only and answers notFound for non-members",
    async (type) => {
      const { em, list } = project(type);
      const other = em.state.createList("other");
      const who = type === "email" ? { email: "m@example.com" } : { userId: "m" };
      expect((await subscribe(em, list, [who])).successCount).toBe(1);
      expect((await subscribe(em, other, [who])).successCount).toBe(1);

      const b = await unsubscribe(em, list, [
        who,
        { email: "stranger@example.com" },
        { userId: "stranger" },
      ]);
      expect(b.successCount).toBe(1);
      expect(failures(b)).toEqual({
        notFoundEmails: ["stranger@example.com"],
        notFoundUserIds: ["stranger"],
      });
      expect(em.state.hasMember(list, who)).toBe(false);
      expect(em.state.hasMember(other, who)).toBe(true);

      const again = await unsubscribe(em, list, [who]);
      expect(again.successCount).toBe(0);
      expect(failures(again)).toEqual(
        type === "email" ? { notFoundEmails: ["m@example.com"] } : { notFoundUserIds: ["m"] },
      );
    },
  );

  it.each(["email", "userId", "hybrid"] as const)(
    "%s: a repeated subscribe is idempotent",
    async (type) => {
      const { em, list } = project(type);
      const who = { email: "a@example.com", userId: "a" };
      await subscribe(em, list, [who]);
      const b = await subscribe(em, list, [who]);
      expect(b.successCount).toBe(1);
      expect(em.state.members(list)).toEqual([who]);
    },
  );
});

describe("email-based project", () => {
  it("creates unknown users by email, lowercased, and echoes lowercased emails", async () => {
    const { em, list } = project("email");
    const b = await subscribe(em, list, [{ email: "New@Example.COM" }, { email: "bad@@x.com" }]);
    expect(b.successCount).toBe(1);
    expect(b.failedUpdates.invalidEmails).toEqual(["bad@@x.com"]);
    expect(em.state.members(list)).toEqual([{ email: "new@example.com" }]);
    expect(em.state.hasMember(list, { email: "NEW@example.com" })).toBe(true);
  });

  it("ignores updateExistingUsersOnly", async () => {
    const { em, list } = project("email");
    const b = await subscribe(em, list, [{ email: "fresh@example.com" }], true);
    expect(b.successCount).toBe(1);
    expect(em.state.hasMember(list, { email: "fresh@example.com" })).toBe(true);
  });

  it("looks up a userId-only subscriber by userId and never creates one", async () => {
    const { em, list } = project("email");
    em.state.addUser({ email: "known@example.com", userId: "k1" });
    const b = await subscribe(em, list, [
      { userId: "k1", preferUserId: true },
      { userId: "unknown", preferUserId: true },
    ]);
    expect(b.successCount).toBe(1);
    expect(failures(b)).toEqual({ notFoundUserIds: ["unknown"] });
    expect(em.state.members(list)).toEqual([{ email: "known@example.com", userId: "k1" }]);
  });

  it("refuses a userId held by a user with another email", async () => {
    const { em, list } = project("email");
    em.state.addUser({ email: "first@example.com", userId: "u1" });
    const b = await subscribe(em, list, [{ email: "second@example.com", userId: "u1" }]);
    expect(failures(b)).toEqual({ conflictUserIds: ["u1"] });
  });

  it("identifies by email when both are sent, case-insensitively", async () => {
    const { em, list } = project("email");
    em.state.addUser({ email: "mixed@example.com" });
    await subscribe(em, list, [{ email: "MIXED@example.com", userId: "m1" }]);
    expect(em.state.users()).toEqual([{ email: "mixed@example.com", userId: "m1" }]);
    expect(em.state.members(list)).toEqual([{ email: "mixed@example.com", userId: "m1" }]);
  });
});

describe("userId-based project", () => {
  it("creates unknown users by userId, case-sensitively", async () => {
    const { em, list } = project("userId");
    const b = await subscribe(em, list, [{ userId: "User1" }, { userId: "user1" }]);
    expect(b.successCount).toBe(2);
    expect(em.state.users()).toEqual([{ userId: "User1" }, { userId: "user1" }]);
  });

  it("answers notFoundUserIds for unknown ids with updateExistingUsersOnly", async () => {
    const { em, list } = project("userId");
    em.state.addUser({ userId: "known" });
    const b = await subscribe(em, list, [{ userId: "known" }, { userId: "unknown" }], true);
    expect(b.successCount).toBe(1);
    expect(failures(b)).toEqual({ notFoundUserIds: ["unknown"] });
    expect(em.state.users()).toEqual([{ userId: "known" }]);
  });

  it("looks up an email-only subscriber by email and never creates one", async () => {
    const { em, list } = project("userId");
    em.state.addUser({ userId: "u1", email: "one@example.com" });
    const b = await subscribe(em, list, [
      { email: "ONE@example.com" },
      { email: "nobody@example.com" },
    ]);
    expect(b.successCount).toBe(1);
    expect(failures(b)).toEqual({ notFoundEmails: ["nobody@example.com"] });
    expect(em.state.hasMember(list, { userId: "u1" })).toBe(true);
  });

  it("reads back userIds from getUsers", async () => {
    const { em, list } = project("userId");
    await subscribe(em, list, [{ userId: "u1", email: "one@example.com" }]);
    expect(em.state.memberIdentifiers(list, false)).toEqual(["u1"]);
  });
});

describe("hybrid project", () => {
  it("creates unknown users by userId or by email", async () => {
    const { em, list } = project("hybrid");
    const b = await subscribe(em, list, [
      { userId: "u1" },
      { email: "e2@example.com" },
      { userId: "u3", email: "e3@example.com" },
    ]);
    expect(b.successCount).toBe(3);
    expect(em.state.members(list)).toEqual([
      { userId: "u1" },
      { email: "e2@example.com" },
      { email: "e3@example.com", userId: "u3" },
    ]);
  });

  it("answers notFound* for unknown users with updateExistingUsersOnly", async () => {
    const { em, list } = project("hybrid");
    em.state.addUser({ userId: "known" });
    const b = await subscribe(
      em,
      list,
      [{ userId: "known" }, { userId: "nobody" }, { email: "nobody@example.com" }],
      true,
    );
    expect(b.successCount).toBe(1);
    expect(failures(b)).toEqual({
      notFoundUserIds: ["nobody"],
      notFoundEmails: ["nobody@example.com"],
    });
  });

  it("matches on the userId and updates that user's email", async () => {
    const { em, list } = project("hybrid");
    em.state.addUser({ userId: "u1", email: "old@example.com" });
    const b = await subscribe(em, list, [{ userId: "u1", email: "New@example.com" }]);
    expect(b.successCount).toBe(1);
    expect(em.state.users()).toEqual([{ userId: "u1", email: "new@example.com" }]);
    expect(em.state.hasMember(list, { email: "old@example.com" })).toBe(false);
    expect(em.state.hasMember(list, { email: "new@example.com" })).toBe(true);
  });

  it("refuses an email that belongs to a different user as conflictEmails", async () => {
    const { em, list } = project("hybrid");
    em.state.addUser({ userId: "u1", email: "one@example.com" });
    em.state.addUser({ userId: "u2", email: "two@example.com" });
    const b = await subscribe(em, list, [
      { userId: "u1", email: "two@example.com" },
      { userId: "u9", email: "one@example.com" },
    ]);
    expect(b.successCount).toBe(0);
    expect(failures(b)).toEqual({ conflictEmails: ["two@example.com", "one@example.com"] });
    expect(em.state.members(list)).toEqual([]);
  });

  it("gives an email-only user the userId a subscriber brings with that email", async () => {
    const { em, list } = project("hybrid");
    em.state.addUser({ email: "solo@example.com" });
    const b = await subscribe(em, list, [{ userId: "s1", email: "solo@example.com" }]);
    expect(b.successCount).toBe(1);
    expect(em.state.users()).toEqual([{ email: "solo@example.com", userId: "s1" }]);
  });

  it("unsubscribes by userId when one is sent, else by email", async () => {
    const { em, list } = project("hybrid");
    await subscribe(em, list, [
      { userId: "u1", email: "one@example.com" },
      { email: "two@example.com" },
    ]);
    const b = await unsubscribe(em, list, [
      { userId: "u1", email: "ignored@example.com" },
      { email: "TWO@example.com" },
    ]);
    expect(b.successCount).toBe(2);
    expect(em.state.members(list)).toEqual([]);
  });
});
