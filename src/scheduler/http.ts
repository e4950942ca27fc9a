/**
 * The service's HTTP API on node:http: routing, bearer-token auth, JSON bodies and JSON errors.
 * What the routes answer comes from an ApiBackend (src/scheduler/service.ts), so this file holds
 * no warehouse or scheduling logic.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { z } from "zod";
import type { Schedule } from "../config/index.js";
import { sendConsole } from "../console/page.js";
import {
  CancelledError,
  ConfigError,
  FAILURE_CODES,
  LockedError,
  redact,
  SourceError,
} from "../errors.js";
import type { FailureRow, RunRow } from "../state/store.js";
import type { SchedulerLog, TriggerResult } from "./scheduler.js";

export interface SyncView {
  name: string;
  source: string;
  destination: string;
  schedule: Schedule;
  nextRun: string | null;
  running: { runId: number | null; reason: string; startedAt: string } | null;
  lastRun: RunRow | null;
  /** Why the last run could not be read (warehouse unreachable or busy). */
  lastRunError?: string;
}

export interface Health {
  configLoadedAt: string;
  syncs: number;
  sources: Record<string, "ok" | "unreachable">;
}

export interface ApiBackend {
  hasSync(name: string): boolean;
  syncs(): Promise<SyncView[]>;
  runs(name: string, limit: number): Promise<RunRow[]>;
  run(name: string, runId: number): Promise<RunRow | null>;
  failures(name: string, q: { runId: number; code?: string; limit: number }): Promise<FailureRow[]>;
  trigger(name: string, opts: { fullResync: boolean }): Promise<TriggerResult>;
  health(): Promise<Health>;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Values to clear from any error message the API sends. */
  secrets(): string[];
}

export interface ApiOptions {
  /** Required as `Authorization: Bearer <token>` on /api routes; null: no auth (loopback). */
  token: string | null;
  log: SchedulerLog & { debug?: SchedulerLog["info"] };
}

const MAX_BODY_BYTES = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const TriggerBody = z.strictObject({
  fullResync: z.boolean().optional(),
});

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Constant-time comparison of the presented token with the configured one. */
function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const header = req.headers.authorization ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match?.[1]) return false;
  return timingSafeEqual(digest(match[1]), digest(token));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError(413, "body_too_large", `the body is over ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (text === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, "bad_request", "the body is not valid JSON");
  }
}

function positiveInt(value: string | null, what: string, fallback: number, max: number): number {
  if (value === null) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new HttpError(400, "bad_request", `${what} must be an integer from 1 to ${max}`);
  }
  return Number(value);
}

function methodNotAllowed(allowed: string[]): HttpError {
  return new HttpError(405, "method_not_allowed", `use ${allowed.join(" or ")}`, {
    allow: allowed.join(", "),
  });
}

export function createApiServer(backend: ApiBackend, opts: ApiOptions): Server {
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const parts = url.pathname
      .split("/")
      .filter((p) => p !== "")
      .map(decodeURIComponent);

    // The console page holds no data (it calls /api with the user's token), so it needs no auth.
    if (url.pathname === "/" || url.pathname === "/console") {
      if (method !== "GET") throw methodNotAllowed(["GET"]);
      sendConsole(res);
      return;
    }
    if (url.pathname === "/healthz") {
      if (method !== "GET") throw methodNotAllowed(["GET"]);
      const health = await backend.health();
      const ok = Object.values(health.sources).every((s) => s === "ok");
      sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "degraded", ...health });
      return;
    }
    if (url.pathname === "/metrics") {
      if (method !== "GET") throw methodNotAllowed(["GET"]);
      const m = await backend.metrics();
      res.writeHead(200, { "content-type": m.contentType });
      res.end(m.body);
      return;
    }
    if (parts[0] !== "api") throw new HttpError(404, "not_found", `no route ${url.pathname}`);
    if (!authorized(req, opts.token)) {
      throw new HttpError(401, "unauthorized", "send Authorization: Bearer <AUDIENCE_SYNC_TOKEN>", {
        "www-authenticate": 'Bearer realm="audience-sync"',
      });
    }
    if (parts[1] !== "syncs" || parts.length > 6) {
      throw new HttpError(404, "not_found", `no route ${url.pathname}`);
    }
    if (parts.length === 2) {
      if (method !== "GET") throw methodNotAllowed(["GET"]);
      sendJson(res, 200, { syncs: await backend.syncs() });
      return;
    }
    const name = parts[2] ?? "";
    if (
      parts.length === 3 ||
      parts[3] !== "runs" ||
      (parts.length === 6 && parts[5] !== "failures")
    ) {
      throw new HttpError(404, "not_found", `no route ${url.pathname}`);
    }
    if (!backend.hasSync(name)) throw new HttpError(404, "not_found", `no sync named "${name}"`);

    if (parts.length === 4) {
      if (method === "POST") {
        const parsed = TriggerBody.safeParse(await readJson(req));
        if (!parsed.success) {
          throw new HttpError(
            400,
            "bad_request",
            `bad body: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ")}; expected {"fullResync"?: boolean}`,
          );
        }
        const started = await backend.trigger(name, {
          fullResync: parsed.data.fullResync === true,
        });
        if (started.runId === null) {
          sendJson(res, 500, {
            error: {
              code: started.report?.error?.code ?? "run_failed",
              message: `the run failed before it started: ${started.message}`,
            },
          });
          return;
        }
        const location = `/api/syncs/${encodeURIComponent(name)}/runs/${started.runId}`;
        sendJson(
          res,
          202,
          { sync: name, runId: started.runId, status: "running", location },
          { location },
        );
        return;
      }
      if (method !== "GET") throw methodNotAllowed(["GET", "POST"]);
      const limit = positiveInt(url.searchParams.get("limit"), "limit", 20, 1000);
      sendJson(res, 200, { runs: await backend.runs(name, limit) });
      return;
    }
    if (method !== "GET") throw methodNotAllowed(["GET"]);
    const runId = positiveInt(parts[4] ?? null, "the run id", 1, Number.MAX_SAFE_INTEGER);
    if (parts.length === 5) {
      const run = await backend.run(name, runId);
      if (!run) throw new HttpError(404, "not_found", `sync "${name}" has no run ${runId}`);
      sendJson(res, 200, run);
      return;
    }
    const code = url.searchParams.get("code");
    if (code !== null && !(FAILURE_CODES as readonly string[]).includes(code)) {
      throw new HttpError(
        400,
        "bad_request",
        `unknown failure code "${code}"; known codes: ${FAILURE_CODES.join(", ")}`,
      );
    }
    const limit = positiveInt(url.searchParams.get("limit"), "limit", 1000, 100_000);
    const failures = await backend.failures(name, {
      runId,
      ...(code !== null ? { code } : {}),
      limit,
    });
    sendJson(res, 200, { sync: name, runId, failures });
  };

  const onError = (res: ServerResponse, err: unknown): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
      return;
    }
    const message = redact(err instanceof Error ? err.message : String(err), ...backend.secrets());
    if (err instanceof LockedError) {
      sendJson(res, 409, { error: { code: "already_running", message } });
    } else if (err instanceof CancelledError) {
      sendJson(res, 503, { error: { code: "stopping", message } });
    } else if (err instanceof ConfigError) {
      sendJson(res, 404, { error: { code: "not_found", message } });
    } else if (err instanceof SourceError) {
      sendJson(res, 503, { error: { code: "source_unavailable", message } });
    } else {
      opts.log.error({ error: message }, "API request failed");
      sendJson(res, 500, { error: { code: "internal_error", message } });
    }
  };

  return createServer((req, res) => {
    route(req, res)
      .catch((err: unknown) => onError(res, err))
      .finally(() => {
        opts.log.debug?.(
          { method: req.method, path: req.url?.split("?")[0], status: res.statusCode },
          "api request",
        );
      });
  });
}
