/**
 * The console's browser script, inlined in the page and allowed by its hash in the CSP. Plain
 * browser JavaScript in a string (the project compiles for Node, without DOM types).
 *
 * Every value from the API reaches the DOM as text (Node.append of a string, textContent) or as
 * an encoded URL fragment; the script never assigns HTML. API paths are relative ("api/...") so
 * the console also works behind a proxy that serves it under a path prefix.
 */
export const CONSOLE_SCRIPT = String.raw`
"use strict";
(() => {
  const TOKEN_KEY = "audience-sync.token";
  const REFRESH_MS = 10000;
  const RUNS_SHOWN = 50;
  const FAILURES_SHOWN = 500;

  const $ = (id) => document.getElementById(id);
  const main = $("main");
  const view = { key: "", code: "", live: true };
  let timer = null;
  let generation = 0;
  let refreshFailed = false;

  // ---- DOM: build elements; strings always become text nodes ----
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }
  const empty = (text, hint) => el("div", { class: "empty" }, el("div", {}, text), hint ? el("div", { class: "small" }, hint) : null);
  const badge = (status) => el("span", { class: "badge s-" + String(status).replace(/[^a-z_]/g, "") }, String(status).replace(/_/g, " "));
  const table = (heads, rows) =>
    el("table", {},
      el("thead", {}, el("tr", {}, heads.map((h) => el("th", { class: h.startsWith("#") ? "num" : null }, h.replace(/^#/, ""))))),
      el("tbody", {}, rows));
  const num = (v) => el("td", { class: "num" }, v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"));

  // ---- formatting ----
  function utc(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }
  function duration(ms) {
    if (!(ms >= 0)) return "–";
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = Math.round(ms / 1000);
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + (s % 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function relative(iso) {
    if (!iso) return "";
    const ms = new Date(iso).getTime() - Date.now();
    if (Number.isNaN(ms)) return "";
    return ms >= 0 ? "in " + duration(ms) : duration(-ms) + " ago";
  }
  const when = (iso) => el("span", { title: iso ? String(iso) : null }, utc(iso), iso ? el("div", { class: "small muted" }, relative(iso)) : null);
  function runDuration(run) {
    if (!run.startedAt) return "–";
    const end = run.finishedAt ? new Date(run.finishedAt).getTime() : Date.now();
    return duration(end - new Date(run.startedAt).getTime()) + (run.finishedAt ? "" : " so far");
  }
  function schedule(s) {
    if (!s || s.type === "manual") return "manual";
    if (s.type === "basic") return "every " + s.every + (s.at ? " from " + s.at : "") + " UTC";
    if (s.type === "cron") return "cron " + s.expression + " (UTC)";
    return JSON.stringify(s);
  }
  const enc = encodeURIComponent;
  const syncHref = (name) => "#/syncs/" + enc(name);
  const runHref = (name, id) => syncHref(name) + "/runs/" + enc(id);

  // ---- the API ----
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; } }
  function setToken(t) {
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch {}
    $("forget").hidden = !t;
  }
  async function call(method, path) {
    const headers = { accept: "application/json" };
    if (token()) headers.authorization = "Bearer " + token();
    let res;
    try {
      res = await fetch(path, { method, headers, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new ApiError(0, "network", "the service did not answer (" + e.message + ")");
    }
    let body = null;
    try { body = await res.json(); } catch {}
    if (!res.ok) {
      const err = (body && body.error) || {};
      throw new ApiError(res.status, err.code || "http_" + res.status, err.message || res.status + " " + res.statusText);
    }
    return body;
  }
  const api = {
    syncs: () => call("GET", "api/syncs"),
    trigger: (name) => call("POST", "api/syncs/" + enc(name) + "/runs"),
    runs: (name) => call("GET", "api/syncs/" + enc(name) + "/runs?limit=" + (RUNS_SHOWN + 1)),
    run: (name, id) => call("GET", "api/syncs/" + enc(name) + "/runs/" + enc(id)),
    failures: (name, id, code) =>
      call("GET", "api/syncs/" + enc(name) + "/runs/" + enc(id) + "/failures?limit=" + (FAILURES_SHOWN + 1) + (code ? "&code=" + enc(code) : "")),
  };

  // ---- messages and the token form ----
  function notify(kind, text) {
    refreshFailed = false;
    const box = $("notice");
    box.replaceChildren(el("div", { class: "msg msg-" + kind }, el("span", {}, text),
      el("button", { class: "link", type: "button", onclick: () => box.replaceChildren() }, "dismiss")));
  }
  function askToken(message) {
    stopTimer();
    setToken("");
    $("auth-why").textContent = message;
    $("auth").hidden = false;
    main.replaceChildren();
    view.key = "";
    $("token").focus();
  }

  const unauthorized = () =>
    askToken(token() ? "The service refused that token." : "This service needs its API token (the AUDIENCE_SYNC_TOKEN it was started with).");

  // ---- actions ----
  async function runNow(name, button) {
    button.disabled = true;
    try {
      const r = await api.trigger(name);
      notify("ok", "Run " + r.runId + " of " + name + " started.");
    } catch (e) {
      if (e.status === 401) return unauthorized();
      if (e.status === 409) notify("warn", name + " is already running (here or in another instance). Try again when that run has finished.");
      else notify("error", "Could not start " + name + ": " + e.message);
    } finally {
      button.disabled = false;
    }
    await render();
  }
  const runButton = (s) =>
    el("button", { type: "button", disabled: s.running ? "" : null, title: s.running ? "already running" : "run this sync now",
      onclick: (ev) => { ev.stopPropagation(); void runNow(s.name, ev.currentTarget); } }, "Run now");
  // A whole row opens its page; the link inside keeps open-in-new-tab and keyboard access.
  const rowLink = (href, cells) => el("tr", { class: "row-link", onclick: (ev) => { if (!ev.target.closest("a,button")) location.hash = href; } }, cells);

  // ---- views ----
  async function syncsView() {
    const { syncs } = await api.syncs();
    if (syncs.length === 0) return [el("h2", {}, "Syncs"), empty("No syncs in the config.", "Add one under syncs: in audience-sync.yaml, then reload serve (SIGHUP).")];
    const rows = syncs.map((s) => {
      const last = s.lastRun;
      const status = s.running
        ? [badge("running"), el("div", { class: "small muted" }, s.running.reason + (s.running.runId ? " · run " + s.running.runId : ""))]
        : last ? [el("a", { href: runHref(s.name, last.runId) }, badge(last.status)), el("div", { class: "small muted" }, "run " + last.runId)]
        : el("span", { class: "muted" }, "no runs yet");
      return rowLink(syncHref(s.name), [
        el("td", {}, el("a", { href: syncHref(s.name) }, el("strong", {}, s.name)), el("div", { class: "small muted" }, s.source + " → " + s.destination)),
        el("td", {}, schedule(s.schedule)),
        el("td", {}, s.nextRun ? when(s.nextRun) : el("span", { class: "muted" }, "not scheduled")),
        el("td", {}, status, s.lastRunError ? el("div", { class: "small bad" }, "cannot read runs: " + s.lastRunError) : null),
        el("td", {}, s.running ? when(s.running.startedAt) : last ? when(last.startedAt) : "–"),
        el("td", {}, runButton(s)),
      ]);
    });
    return [el("h2", {}, "Syncs"), table(["Sync", "Schedule", "Next run", "Last run", "Last run started", ""], rows)];
  }

  async function syncView(name) {
    const [{ syncs }, { runs }] = await Promise.all([api.syncs(), api.runs(name)]);
    const s = syncs.find((x) => x.name === name);
    const crumbs = el("div", { class: "crumbs" }, el("a", { href: "#/" }, "Syncs"), " › ", name);
    const head = [crumbs, el("h2", {}, name),
      el("div", { class: "toolbar" },
        s ? el("span", { class: "muted" }, schedule(s.schedule) + (s.nextRun ? " · next run " + utc(s.nextRun) + " (" + relative(s.nextRun) + ")" : "")) : null,
        s ? runButton(s) : null)];
    if (runs.length === 0) {
      const hint = s && s.nextRun ? "The first scheduled run is at " + utc(s.nextRun) + "." : "This sync runs only when triggered: use Run now, or audience-sync sync " + name + ".";
      return [...head, empty("No runs yet.", hint)];
    }
    const rows = runs.slice(0, RUNS_SHOWN).map((r) => {
      const failed = (r.failedSubscribe || 0) + (r.failedUnsubscribe || 0);
      return rowLink(runHref(name, r.runId), [
        el("td", {}, el("a", { href: runHref(name, r.runId) }, String(r.runId))),
        el("td", {}, badge(r.status), r.fullResync ? el("div", { class: "small muted" }, "full resync") : null),
        el("td", {}, when(r.startedAt)),
        el("td", { class: "num" }, runDuration(r)),
        num(r.succeededSubscribe),
        num(r.succeededUnsubscribe),
        el("td", { class: "num" + (failed > 0 ? " bad" : "") }, failed.toLocaleString("en-US")),
        el("td", { class: "err small" }, r.error || ""),
      ]);
    });
    return [...head, el("h3", {}, "Runs"),
      table(["Run", "Status", "Started", "#Duration", "#Subscribed", "#Unsubscribed", "#Failed", "Error"], rows),
      runs.length > RUNS_SHOWN ? el("p", { class: "small muted" }, "Showing the latest " + RUNS_SHOWN + " runs. Older ones: GET api/syncs/" + name + "/runs?limit=1000, or the sync_runs table.") : null];
  }

  async function runView(name, id) {
    const [run, { failures }] = await Promise.all([api.run(name, id), api.failures(name, id, view.code)]);
    view.live = run.status === "running";
    const crumbs = el("div", { class: "crumbs" }, el("a", { href: "#/" }, "Syncs"), " › ", el("a", { href: syncHref(name) }, name), " › run " + run.runId);
    const fact = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
    const facts = el("dl", { class: "facts" },
      fact("Started", utc(run.startedAt)), fact("Finished", run.finishedAt ? utc(run.finishedAt) : "still running"),
      fact("Duration", runDuration(run)), fact("Full resync", run.fullResync ? "yes" : "no"),
      fact("Rows read", run.rowsRead ?? "–"), fact("Invalid rows", run.invalidRows ?? "–"),
      fact("Unchanged members", run.unchanged ?? "–"), fact("Iterable list id", run.listId ?? "–"));
    const counts = table(["Operation", "#Planned", "#Succeeded", "#Failed", "#Skipped"], [
      el("tr", {}, el("td", {}, "subscribe"), num(run.plannedSubscribe), num(run.succeededSubscribe), num(run.failedSubscribe), el("td", { class: "num" }, "–")),
      el("tr", {}, el("td", {}, "unsubscribe"), num(run.plannedUnsubscribe), num(run.succeededUnsubscribe), num(run.failedUnsubscribe), num(run.skippedUnsubscribe)),
    ]);
    const byCode = Object.entries(run.failuresByCode || {}).sort((a, b) => b[1] - a[1]);
    const setCode = (code) => { view.code = code; void render(); };
    const codeTable = byCode.length === 0
      ? empty("No failed records in this run.")
      : table(["Failure code", "#Records", ""], byCode.map(([code, n]) =>
          el("tr", {}, el("td", {}, el("code", {}, code)), num(n),
            el("td", {}, el("button", { class: "link", type: "button", onclick: () => setCode(code) }, "show records")))));
    const codes = [...new Set([...byCode.map(([c]) => c), ...(view.code ? [view.code] : [])])];
    const filter = el("select", { "aria-label": "failure code", onchange: (ev) => setCode(ev.target.value) },
      el("option", { value: "" }, "all codes"), codes.map((c) => el("option", { value: c }, c)));
    filter.value = view.code;
    const shown = failures.slice(0, FAILURES_SHOWN);
    const records = shown.length === 0
      ? empty(view.code ? "No failed records with code " + view.code + "." : "No failed records logged for this run.",
          byCode.length > 0 && !view.code ? "The run counted failures but sync_logs holds none: retainSyncLogs may be off for this sync." : null)
      : table(["Operation", "Email", "User id", "Code", "Message"], shown.map((f) =>
          el("tr", {}, el("td", {}, f.operation), el("td", { class: "mono" }, f.email ?? "–"), el("td", { class: "mono" }, f.userId ?? "–"),
            el("td", {}, el("code", {}, f.errorCode ?? "–")), el("td", { class: "err" }, f.errorMessage ?? ""))));
    return [crumbs, el("h2", {}, "Run " + run.runId + " ", badge(run.status)), facts,
      run.error ? el("pre", { class: "error" }, run.error) : null,
      el("h3", {}, "Counts"), counts,
      el("h3", {}, "Failures by code"), codeTable,
      el("h3", {}, "Failed records"), el("div", { class: "toolbar" }, el("label", {}, "Code ", filter)),
      records,
      failures.length > FAILURES_SHOWN ? el("p", { class: "small muted" }, "Showing the first " + FAILURES_SHOWN + " records. All of them: GET api/syncs/" + name + "/runs/" + run.runId + "/failures?limit=100000, or the sync_logs table.") : null];
  }

  // ---- routing and refresh ----
  function route() {
    let parts;
    try { parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent); } catch { parts = []; }
    if (parts[0] === "syncs" && parts[1] && parts[2] === "runs" && /^\d+$/.test(parts[3] || "")) return { key: "run:" + parts[1] + ":" + parts[3], show: () => runView(parts[1], parts[3]) };
    if (parts[0] === "syncs" && parts[1]) return { key: "sync:" + parts[1], show: () => syncView(parts[1]) };
    return { key: "syncs", show: syncsView };
  }
  function stopTimer() { if (timer) clearTimeout(timer); timer = null; }
  async function render() {
    stopTimer();
    const r = route();
    const gen = ++generation;
    if (r.key !== view.key) view.live = true;
    try {
      const content = await r.show();
      if (gen !== generation) return;
      main.replaceChildren(...[content].flat().filter(Boolean));
      view.key = r.key;
      if (refreshFailed) $("notice").replaceChildren();
      refreshFailed = false;
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      if (gen !== generation) return;
      if (e.status === 401) return unauthorized();
      if (r.key !== view.key) {
        main.replaceChildren(el("div", { class: "crumbs" }, el("a", { href: "#/" }, "Syncs")), empty("Could not load this page.", e.message));
        view.key = r.key;
      } else {
        notify("error", "Could not refresh: " + e.message);
        refreshFailed = true;
      }
    }
    if (view.live) timer = setTimeout(tick, REFRESH_MS);
  }
  function tick() {
    timer = null;
    // Hidden tabs do not poll; a control being used is not rebuilt under the pointer.
    if (document.visibilityState !== "visible") return;
    if (main.contains(document.activeElement) && document.activeElement.matches("select,input")) { timer = setTimeout(tick, REFRESH_MS); return; }
    void render();
  }

  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && !timer && view.live && $("auth").hidden) void render(); });
  window.addEventListener("hashchange", () => { view.code = ""; $("notice").replaceChildren(); void render(); });
  $("refresh").addEventListener("click", () => void render());
  $("forget").addEventListener("click", () => askToken("Token forgotten. Enter a token to continue."));
  $("auth-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("token").value.trim());
    $("token").value = "";
    $("auth").hidden = true;
    void render();
  });
  setToken(token());
  void render();
})();
`;
