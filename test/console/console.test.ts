/**
 * The web console: the page as served (headers, CSP, no data in it) and its script driven in a
 * small fake DOM against the real service (DuckDB warehouse file, the emulator), so every API
 * call the page makes is answered by the real routes.
 */
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import vm from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP, CONSOLE_HTML } from "../../src/console/page.js";
import { CONSOLE_SCRIPT } from "../../src/console/script.js";
import { type Emulator, startEmulator } from "../../src/emulator/index.js";
import { createLogger } from "../../src/scheduler/log.js";
import { type Service, startService } from "../../src/scheduler/service.js";
import { openDuckDb } from "../../src/sources/duckdb.js";
import {
  api,
  configYaml,
  emails,
  KEY,
  logCapture,
  TOKEN,
  tempDir,
  waitForRun,
  writeConfig,
  writeModel,
} from "../serve/helpers.js";
import { byText, FakeBrowser } from "./fake-dom.js";

const FAST_RETRY = { retry: { baseMs: 1, maxMs: 5, listNotFoundRetryMs: 50 } };
const TOKEN_STORED = { "audience-sync.token": TOKEN };
const HOSTILE = "<img src=x onerror=alert(1)>";

function inline(tag: "script" | "style"): string[] {
  return [...CONSOLE_HTML.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map(
    (m) => m[1] ?? "",
  );
}
const sha = (text: string) => createHash("sha256").update(text, "utf8").digest("base64");

describe("the console page", () => {
  it("allows exactly its own inline script and style by hash, and nothing external", () => {
    const scripts = inline("script");
    const styles = inline("style");
    expect(scripts).toHaveLength(1);
    expect(styles).toHaveLength(1);
    const directives = Object.fromEntries(
      CONSOLE_CSP.split(";").map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values];
      }),
    );
    expect(directives["default-src"]).toEqual(["'none'"]);
    expect(directives["script-src"]).toEqual([`'sha256-${sha(scripts[0] ?? "")}'`]);
    expect(directives["style-src"]).toEqual([`'sha256-${sha(styles[0] ?? "")}'`]);
    expect(directives["connect-src"]).toEqual(["'self'"]);
    expect(directives["frame-ancestors"]).toEqual(["'none'"]);
    // inline handlers and style attributes would be refused by this CSP; external assets too
    expect(CONSOLE_HTML).not.toMatch(/\son\w+\s*=/i);
    expect(CONSOLE_HTML).not.toMatch(/\sstyle\s*=/i);
    expect(CONSOLE_HTML).not.toMatch(/\s(src|href)\s*=\s*"(https?:)?\/\//i);
    expect(CONSOLE_HTML).not.toMatch(/@import|url\(/i);
  });

  it("is valid JavaScript that never inserts markup", () => {
    expect(() => new vm.Script(CONSOLE_SCRIPT)).not.toThrow();
    expect(CONSOLE_SCRIPT).not.toMatch(
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/,
    );
  });
});

interface Setup {
  dir: string;
  source: { type: "duckdb"; path: string; stateSchema: string };
  open: () => ReturnType<typeof openDuckDb>;
  emulator: Emulator;
  service: Service;
}

async function start(opts: {
  model: string[];
  latencyMs?: number;
  destination?: string;
}): Promise<Setup> {
  const emulator = await startEmulator({
    port: 0,
    projectType: "email",
    apiKey: KEY,
    ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
  });
  const dir = await tempDir();
  const source = {
    type: "duckdb" as const,
    path: path.join(dir, "wh.duckdb"),
    stateSchema: "state",
  };
  const open = () => openDuckDb(source);
  await writeModel(open, "main", "audience", opts.model);
  const file = await writeConfig(
    dir,
    configYaml({
      source,
      emulator,
      syncs: { vip: { table: "main.audience" } },
      ...(opts.destination ? { destination: opts.destination } : {}),
    }),
  );
  const service = await startService({
    configFile: file,
    port: 0,
    token: TOKEN,
    logger: createLogger({ destination: logCapture().stream }),
    client: FAST_RETRY,
  });
  return { dir, source, open, emulator, service };
}

async function stop(s: Setup | undefined): Promise<void> {
  if (!s) return;
  await s.service.stop({ timeoutMs: 20_000 });
  await s.emulator.close();
  await rm(s.dir, { recursive: true, force: true });
}

describe("the console served by serve", () => {
  let s: Setup;

  beforeAll(async () => {
    s = await start({ model: [...emails(5), HOSTILE] });
  });
  afterAll(async () => {
    await stop(s);
  });

  it("GET / and GET /console answer the page without a token, with the CSP and no data", async () => {
    for (const route of ["/", "/console"]) {
      const res = await fetch(`${s.service.url}${route}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const body = await res.text();
      expect(body).toBe(CONSOLE_HTML);
      expect(body).not.toContain("vip");
      expect(body).not.toContain("@example.com");
      expect(body).not.toContain(TOKEN);
    }
    const post = await fetch(`${s.service.url}/`, { method: "POST" });
    expect(post.status).toBe(405);
    expect((await fetch(`${s.service.url}/console/other`)).status).toBe(404);
    expect((await api(s.service.url, "GET", "/api/syncs", { token: null })).status).toBe(401);
  });

  it("asks for the token, lists the syncs, runs one, and shows its runs, counts and failed records", async () => {
    const b = new FakeBrowser(CONSOLE_HTML, CONSOLE_SCRIPT, `${s.service.url}/console`);
    await b.settle();
    // no token yet: the API answers 401 and the page asks for one
    expect(b.fetches).toEqual([{ method: "GET", path: "api/syncs", status: 401 }]);
    expect(b.el("auth").hidden).toBe(false);
    expect(b.el("auth-why").textContent).toContain("needs its API token");

    // a wrong token is refused and asked for again, and not kept
    b.el("token").value = "wrong";
    expect(b.el("auth-form").dispatch("submit")).toBe(true);
    await b.settle();
    expect(b.fetches.at(-1)?.status).toBe(401);
    expect(b.el("auth-why").textContent).toContain("refused that token");
    expect(b.storage.size).toBe(0);

    b.el("token").value = ` ${TOKEN} `;
    b.el("auth-form").dispatch("submit");
    await b.settle();
    expect(b.fetches.at(-1)).toEqual({ method: "GET", path: "api/syncs", status: 200 });
    expect(b.el("auth").hidden).toBe(true);
    expect([...b.storage.values()]).toEqual([TOKEN]);
    expect(b.el("forget").hidden).toBe(false);
    const main = b.el("main");
    expect(main.textContent).toContain("vip");
    expect(main.textContent).toContain("manual");
    expect(main.textContent).toContain("no runs yet");
    expect(b.pendingTimers().map((t) => t.ms)).toEqual([10_000]);

    // Run now
    const [button] = byText(main, "button", "Run now");
    expect(button).toBeDefined();
    button?.dispatch("click");
    await b.settle();
    expect(b.fetches).toContainEqual({ method: "POST", path: "api/syncs/vip/runs", status: 202 });
    expect(b.el("notice").textContent).toContain("Run 1 of vip started.");
    await waitForRun(s.service.url, "vip", 1);

    // the sync's run history
    b.navigate("#/syncs/vip");
    await b.settle();
    expect(b.fetches).toContainEqual({
      method: "GET",
      path: "api/syncs/vip/runs?limit=51",
      status: 200,
    });
    const history = b.el("main").textContent;
    expect(history).toContain("completed with failures");
    const runLinks = b
      .el("main")
      .findAll((n) => n.tag === "a" && n.attrs.get("href") === "#/syncs/vip/runs/1");
    expect(runLinks.length).toBeGreaterThan(0);

    // one run: counts, failures by code, failed records; the hostile value stays text
    b.navigate("#/syncs/vip/runs/1");
    await b.settle();
    expect(b.fetches.slice(-2).map((f) => [f.path, f.status])).toEqual(
      expect.arrayContaining([
        ["api/syncs/vip/runs/1", 200],
        ["api/syncs/vip/runs/1/failures?limit=501", 200],
      ]),
    );
    const run = b.el("main");
    expect(run.textContent).toContain("Run 1");
    expect(run.textContent).toContain("invalid_email");
    const cells = run.findAll((n) => n.tag === "td" && n.children.includes(HOSTILE));
    expect(cells).toHaveLength(1);
    expect(run.findAll((n) => n.tag === "img")).toEqual([]);
    // a finished run does not change: no auto-refresh
    expect(b.pendingTimers()).toEqual([]);

    // filter the failed records by code
    const [select] = run.findAll((n) => n.tag === "select");
    expect(select).toBeDefined();
    if (select) {
      select.value = "invalid_email";
      select.dispatch("change");
    }
    await b.settle();
    expect(b.fetches).toContainEqual({
      method: "GET",
      path: "api/syncs/vip/runs/1/failures?limit=501&code=invalid_email",
      status: 200,
    });
    expect(b.el("main").textContent).toContain(HOSTILE);

    // every request after the token was accepted was answered 2xx
    const after = b.fetches.slice(b.fetches.findIndex((f) => f.status === 200));
    expect(after.every((f) => f.status >= 200 && f.status < 300)).toBe(true);
  });

  it("does not poll while the tab is hidden, and refreshes when it shows again", async () => {
    const b = new FakeBrowser(CONSOLE_HTML, CONSOLE_SCRIPT, `${s.service.url}/`, {
      storage: TOKEN_STORED,
    });
    await b.settle();
    expect(b.fetches).toEqual([{ method: "GET", path: "api/syncs", status: 200 }]);
    expect(b.el("main").textContent).toContain("vip");

    b.document.visibilityState = "hidden";
    b.fireTimers();
    await b.settle();
    expect(b.fetches).toHaveLength(1);

    b.document.visibilityState = "visible";
    b.document.fire("visibilitychange");
    await b.settle();
    expect(b.fetches).toHaveLength(2);
    b.fireTimers();
    await b.settle();
    expect(b.fetches).toHaveLength(3);
  });

  it("shows an unknown sync or run as a message in the page", async () => {
    const b = new FakeBrowser(CONSOLE_HTML, CONSOLE_SCRIPT, `${s.service.url}/`, {
      storage: TOKEN_STORED,
      hash: "#/syncs/vip/runs/99",
    });
    await b.settle();
    expect(b.fetches.some((f) => f.path === "api/syncs/vip/runs/99" && f.status === 404)).toBe(
      true,
    );
    expect(b.el("main").textContent).toContain("Could not load this page.");
    expect(b.el("main").textContent).toContain("has no run 99");
  });
});

describe("the console while a run is going", () => {
  let s: Setup;

  beforeAll(async () => {
    // slow answers and small batches keep the run going while the page acts
    s = await start({
      model: emails(200),
      latencyMs: 100,
      destination: "    batchSize: 5\n    concurrency: 1",
    });
  });
  afterAll(async () => {
    await stop(s);
  });

  it("Run now on a sync already running says so instead of failing", async () => {
    const b = new FakeBrowser(CONSOLE_HTML, CONSOLE_SCRIPT, `${s.service.url}/`, {
      storage: TOKEN_STORED,
    });
    await b.settle();
    const [button] = byText(b.el("main"), "button", "Run now");
    expect(button?.disabled).toBe(false);

    // another client starts it while the page shows it idle
    expect((await api(s.service.url, "POST", "/api/syncs/vip/runs")).status).toBe(202);
    button?.dispatch("click");
    await b.settle();
    expect(b.fetches).toContainEqual({ method: "POST", path: "api/syncs/vip/runs", status: 409 });
    expect(b.el("notice").textContent).toContain("vip is already running");
    // and the refreshed table shows it running, its button off
    expect(b.el("main").textContent).toContain("running");
    expect(byText(b.el("main"), "button", "Run now")[0]?.disabled).toBe(true);
  });
});
