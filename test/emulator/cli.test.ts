import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emulatorOptionsFromFlags, isLoopbackHost, startBanner } from "../../src/emulator/flags.js";
import { ConfigError } from "../../src/errors.js";

describe("emulator flags", () => {
  it("defaults to a hybrid project on 127.0.0.1:4010", () => {
    expect(emulatorOptionsFromFlags({ apiKey: "k" }, {})).toEqual({
      host: "127.0.0.1",
      port: 4010,
      projectType: "hybrid",
      apiKey: "k",
    });
  });

  it("reads every flag", () => {
    const options = emulatorOptionsFromFlags(
      {
        host: "::1",
        port: "0",
        projectType: "userId",
        apiKey: "k",
        rateLimit: "5",
        faultRate: "0.25",
        latency: "30",
        state: "s.json",
        newListInvalidMs: "1000",
      },
      {},
    );
    expect(options).toEqual({
      host: "::1",
      port: 0,
      projectType: "userId",
      apiKey: "k",
      rateLimit: 5,
      faultRate: 0.25,
      latencyMs: 30,
      statePath: "s.json",
      newListInvalidMs: 1000,
    });
  });

  it("takes the key from ITERABLE_API_KEY when no flag gives one", () => {
    expect(emulatorOptionsFromFlags({}, { ITERABLE_API_KEY: "from-env" }).apiKey).toBe("from-env");
    expect(emulatorOptionsFromFlags({ apiKey: "flag" }, { ITERABLE_API_KEY: "env" }).apiKey).toBe(
      "flag",
    );
    expect(() => emulatorOptionsFromFlags({}, {})).toThrow(ConfigError);
  });

  it.each([
    [{ port: "70000" }, "--port"],
    [{ port: "x" }, "--port"],
    [{ projectType: "Hybrid" }, "--project-type"],
    [{ rateLimit: "0" }, "--rate-limit"],
    [{ faultRate: "1.5" }, "--fault-rate"],
    [{ latency: "-1" }, "--latency"],
    [{ newListInvalidMs: "" }, "--new-list-invalid-ms"],
  ])("refuses %j naming %s", (flags, path) => {
    let caught: unknown;
    try {
      emulatorOptionsFromFlags({ apiKey: "k", ...flags }, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).path).toBe(path);
  });

  it("refuses a non-loopback host unless remote access is allowed", () => {
    expect(() => emulatorOptionsFromFlags({ apiKey: "k", host: "0.0.0.0" }, {})).toThrow(
      /--allow-remote/,
    );
    expect(
      emulatorOptionsFromFlags({ apiKey: "k", host: "0.0.0.0", allowRemote: true }, {}).host,
    ).toBe("0.0.0.0");
    expect(isLoopbackHost("127.0.0.2")).toBe(true);
    expect(isLoopbackHost("localhost")).toBe(true);
    expect(isLoopbackHost("10.0.0.1")).toBe(false);
    expect(isLoopbackHost("127.example.com")).toBe(false);
  });

  it("prints a config snippet with the URL and never the key", () => {
    const banner = startBanner("http://127.0.0.1:4010", {
      projectType: "email",
      apiKey: "secret-key-123",
    });
    expect(banner).toContain("baseUrl: http://127.0.0.1:4010");
    expect(banner).toContain("projectType: email");
    expect(banner).not.toContain("secret-key-123");
  });
});

describe("audience-sync emulator", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "emulator-cli-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts the command and resolves with the URL it prints. */
  function run(
    args: string[],
    env: Record<string, string>,
  ): { child: ChildProcess; url: Promise<string> } {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "emulator", ...args],
      {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const url = new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      child.once("exit", (code) =>
        reject(new Error(`exited with ${code} before listening: ${out}`)),
      );
    });
    // Tests that expect a refusal never await the URL; this keeps its rejection handled.
    url.catch(() => undefined);
    return { child, url };
  }

  it("serves the API with the key from the environment and saves its state on SIGTERM", async () => {
    const statePath = join(dir, "state.json");
    const { child, url } = run(["--port", "0", "--project-type", "email", "--state", statePath], {
      ITERABLE_API_KEY: "cli-key-123",
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const base = await url;
    const headers = { "Api-Key": "cli-key-123", "Content-Type": "application/json" };
    const created = await fetch(`${base}/api/lists`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "From CLI" }),
    });
    const { listId } = (await created.json()) as { listId: number };
    const sub = await fetch(`${base}/api/lists/subscribe`, {
      method: "POST",
      headers,
      body: JSON.stringify({ listId, subscribers: [{ email: "cli@example.com" }] }),
    });
    expect(sub.status).toBe(200);
    const wrongKey = await fetch(`${base}/api/lists`, { headers: { "Api-Key": "other" } });
    expect(wrongKey.status).toBe(401);

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const saved = JSON.parse(await readFile(statePath, "utf8")) as {
      projectType: string;
      lists: { name: string; members: number[] }[];
      users: { email?: string }[];
    };
    expect(saved.projectType).toBe("email");
    expect(saved.lists.map((l) => [l.name, l.members.length])).toEqual([["From CLI", 1]]);
    expect(saved.users.map((u) => u.email)).toEqual(["cli@example.com"]);
  });

  it("exits 2 on a non-loopback host", async () => {
    const { child } = run(["--host", "0.0.0.0", "--api-key", "k"], {});
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
  });
});
