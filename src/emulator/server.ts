/**
 * The emulator's HTTP edge: node:http without a framework, because it stands in for Iterable in
 * benchmarks and must absorb hundreds of thousands of subscribers a second on one core. Bodies
 * are read as Buffers and parsed once; all semantics live in EmulatorState.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { AudienceSyncError, FatalError } from "../errors.js";
import {
  CreateListRequest,
  INVALID_LIST_ID_MSG,
  RATE_LIMIT_TEXT,
  SubscribeRequest,
  UnsubscribeRequest,
} from "../iterable/wire.js";
import { isSubscribeBody, isUnsubscribeBody } from "./bulk-body.js";
import { Fault, FaultOptions, FaultQueue } from "./faults.js";
import type { Emulator, EmulatorOptions, EmulatorStats } from "./index.js";
import { loadStateFile, saveStateFile } from "./persist.js";
import { type BulkResult, EmulatorState } from "./state.js";

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";
/** Far above the 4 MB Iterable documents for bulk bodies; only guards the emulator's memory. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const CHANNEL_UNSUBSCRIBE_KEPT = 1000;

const BAD_API_KEY = errorJson("BadApiKey", "Disabled API key or insufficient privileges");

function errorJson(code: string, msg: string): string {
  return JSON.stringify({ code, msg, params: null });
}

function invalidListIdJson(id: number | string): string {
  return errorJson("BadParams", `${INVALID_LIST_ID_MSG}: list ${id} does not exist`);
}

/** Iterable's limits are per project and enforced as a leaky bucket (NOTES.md, Limits); the
 *  bucket holds one second's worth of requests. */
class LeakyBucket {
  private level = 0;
  private last = performance.now();
  private readonly capacity: number;
  constructor(private readonly perSecond: number) {
    this.capacity = Math.max(1, perSecond);
  }
  tryTake(): boolean {
    const now = performance.now();
    this.level = Math.max(0, this.level - ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.level + 1 > this.capacity) return false;
    this.level += 1;
    return true;
  }
}

interface Answer {
  status: number;
  body: string;
  contentType: string;
  headers?: Record<string, string>;
}

const json = (status: number, value: unknown): Answer => ({
  status,
  body: typeof value === "string" ? value : JSON.stringify(value),
  contentType: JSON_TYPE,
});
const text = (status: number, body: string): Answer => ({ status, body, contentType: TEXT_TYPE });

/** The route a path belongs to, ids replaced by {id}: the key of stats.byPath. */
function routeOf(path: string): string {
  const m = /^\/api\/lists\/([^/]+)(\/size)?$/.exec(path);
  if (m && m[1] !== "subscribe" && m[1] !== "unsubscribe" && m[1] !== "getUsers") {
    return m[2] ? "/api/lists/{id}/size" : "/api/lists/{id}";
  }
  return path;
}

function parseListId(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || !/^\d+$/.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

class BodyError extends Error {}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyError("body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () =>
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)),
    );
    req.on("error", reject);
  });
}

export async function startServer(options: EmulatorOptions): Promise<Emulator> {
  const host = options.host ?? "127.0.0.1";
  const state = new EmulatorState(options.projectType);
  if (options.statePath) {
    const snap = await loadStateFile(options.statePath);
    if (snap) {
      if (snap.projectType !== options.projectType) {
        throw new FatalError(
          `state file ${options.statePath} holds a ${snap.projectType} project, not ${options.projectType}`,
          "request_rejected",
        );
      }
      state.restore(snap);
    }
  }
  const faults = new FaultQueue();
  const stats: EmulatorStats = {
    requests: 0,
    subscribers: 0,
    byPath: {},
    channelUnsubscribe: [],
    rateLimited: 0,
    faultsInjected: 0,
  };
  const bucket =
    options.rateLimit && options.rateLimit > 0 ? new LeakyBucket(options.rateLimit) : undefined;
  const faultRate = options.faultRate ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  const newListInvalidMs = options.newListInvalidMs ?? 0;
  const log = options.log;
  const hung = new Set<http.ServerResponse>();

  function send(req: http.IncomingMessage, res: http.ServerResponse, a: Answer): void {
    const write = () => {
      if (res.destroyed) return;
      const headers: Record<string, string | number> = {
        "content-type": a.contentType,
        "content-length": Buffer.byteLength(a.body),
        ...a.headers,
      };
      res.writeHead(a.status, headers);
      res.end(a.body);
      log?.(`${req.method} ${req.url} -> ${a.status}`);
    };
    if (latencyMs > 0) setTimeout(write, latencyMs);
    else write();
  }

  function drop(req: http.IncomingMessage): void {
    const destroy = () => req.socket.destroy();
    log?.(`${req.method} ${req.url} -> connection reset`);
    if (latencyMs > 0) setTimeout(destroy, latencyMs);
    else destroy();
  }

  /** Plays a fault; true when the request has been dealt with. */
  function play(req: http.IncomingMessage, res: http.ServerResponse, fault: Fault): void {
    stats.faultsInjected++;
    switch (fault.kind) {
      case "status":
        send(req, res, {
          status: fault.status,
          body: fault.body ?? errorJson("GenericError", `injected ${fault.status}`),
          contentType: fault.contentType ?? JSON_TYPE,
        });
        return;
      case "rateLimitText": {
        const a = text(429, RATE_LIMIT_TEXT);
        if (fault.retryAfterSeconds !== undefined) {
          a.headers = { "retry-after": String(fault.retryAfterSeconds) };
        }
        send(req, res, a);
        return;
      }
      case "reset":
        drop(req);
        return;
      case "hang":
        log?.(`${req.method} ${req.url} -> (hanging)`);
        hung.add(res);
        res.on("close", () => hung.delete(res));
        return;
      case "invalidListId":
        send(req, res, json(400, invalidListIdJson("requested")));
        return;
    }
  }

  function listUnusable(id: number): Answer | undefined {
    const createdAt = state.listCreatedAt(id);
    if (createdAt === undefined) return json(400, invalidListIdJson(id));
    // Iterable can answer invalidListId for a list created a moment ago (NOTES.md).
    if (newListInvalidMs > 0 && Date.now() - createdAt < newListInvalidMs) {
      return json(400, invalidListIdJson(id));
    }
    return undefined;
  }

  function bulkAnswer(r: BulkResult): Answer {
    return json(200, {
      successCount: r.successCount,
      failCount: r.failCount,
      failedUpdates: r.failedUpdates,
      // Deprecated top-level copies, which older Iterable answers carry alone (wire.ts).
      invalidEmails: r.failedUpdates.invalidEmails,
      invalidUserIds: r.failedUpdates.invalidUserIds,
      createdFields: [],
      filteredOutFields: [],
    });
  }

  function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false; answer: Answer } {
    try {
      return { ok: true, value: JSON.parse(body.toString("utf8")) };
    } catch (err) {
      return {
        ok: false,
        answer: json(400, errorJson("BadJsonBody", `invalid JSON: ${(err as Error).message}`)),
      };
    }
  }

  function badParams(error: z.ZodError): Answer {
    return json(400, errorJson("BadParams", z.prettifyError(error)));
  }

  function refuse(schema: z.ZodType, value: unknown): Answer {
    const r = schema.safeParse(value);
    return r.success
      ? json(400, errorJson("BadParams", "malformed request body"))
      : badParams(r.error);
  }

  function apiRoute(method: string, path: string, query: string, body: Buffer): Answer {
    if (path === "/api/lists/subscribe" || path === "/api/lists/unsubscribe") {
      if (method !== "POST") return notFound(method, path);
      const parsed = parseJson(body);
      if (!parsed.ok) return parsed.answer;
      if (path === "/api/lists/subscribe") {
        // The hand check is the hot path; zod runs only to word a refusal.
        const data = parsed.value;
        if (!isSubscribeBody(data)) return refuse(SubscribeRequest, data);
        const unusable = listUnusable(data.listId);
        if (unusable) return unusable;
        stats.subscribers += data.subscribers.length;
        return bulkAnswer(
          state.subscribe(data.listId, data.subscribers, data.updateExistingUsersOnly ?? false),
        );
      }
      const data = parsed.value;
      if (!isUnsubscribeBody(data)) return refuse(UnsubscribeRequest, data);
      // Recorded so tests can assert the client always sends channelUnsubscribe: false.
      stats.channelUnsubscribe.push(data.channelUnsubscribe);
      if (stats.channelUnsubscribe.length > CHANNEL_UNSUBSCRIBE_KEPT) {
        stats.channelUnsubscribe.shift();
      }
      const unusable = listUnusable(data.listId);
      if (unusable) return unusable;
      stats.subscribers += data.subscribers.length;
      return bulkAnswer(state.unsubscribe(data.listId, data.subscribers));
    }
    if (path === "/api/lists") {
      if (method === "GET") return json(200, { lists: state.lists() });
      if (method === "POST") {
        const parsed = parseJson(body);
        if (!parsed.ok) return parsed.answer;
        const r = CreateListRequest.safeParse(parsed.value);
        if (!r.success) return badParams(r.error);
        return json(200, { listId: state.createList(r.data.name, r.data.description) });
      }
      return notFound(method, path);
    }
    if (path === "/api/lists/getUsers") {
      if (method !== "GET") return notFound(method, path);
      const params = new URLSearchParams(query);
      const id = parseListId(params.get("listId"));
      if (id === undefined) return json(400, errorJson("BadParams", "listId must be an integer"));
      const unusable = listUnusable(id);
      if (unusable) return unusable;
      return text(
        200,
        state.memberIdentifiers(id, params.get("preferUserId") === "true").join("\n"),
      );
    }
    const m = /^\/api\/lists\/([^/]+)(\/size)?$/.exec(path);
    if (m) {
      const id = parseListId(m[1]);
      if (m[2]) {
        if (method !== "GET") return notFound(method, path);
        if (id === undefined) return json(400, invalidListIdJson(m[1] ?? ""));
        const unusable = listUnusable(id);
        if (unusable) return unusable;
        return text(200, String(state.listSize(id)));
      }
      if (method !== "DELETE") return notFound(method, path);
      if (id === undefined || !state.hasList(id)) return json(400, invalidListIdJson(m[1] ?? ""));
      state.deleteList(id);
      return json(200, { code: "Success", msg: `Deleted list ${id}`, params: null });
    }
    return notFound(method, path);
  }

  function adminRoute(method: string, path: string, body: Buffer): Answer {
    const route = `${method} ${path}`;
    const bodyJson = () => {
      const parsed = parseJson(body);
      if (!parsed.ok) throw new AdminError(parsed.answer);
      return parsed.value;
    };
    const parse = <T>(schema: z.ZodType<T>, value: unknown): T => {
      const r = schema.safeParse(value);
      if (!r.success) throw new AdminError(badParams(r.error));
      return r.data;
    };
    switch (route) {
      case "GET /_emulator/lists":
        return json(200, state.lists());
      case "POST /_emulator/lists": {
        const r = parse(CreateListRequest, bodyJson());
        return json(200, { listId: state.createList(r.name, r.description) });
      }
      case "GET /_emulator/users":
        return json(200, state.users());
      case "POST /_emulator/users":
        return json(200, state.addUser(parse(IdentityBody, bodyJson())));
      case "POST /_emulator/forget":
        state.forgetUser(parse(IdentityBody, bodyJson()));
        return json(200, { ok: true });
      case "GET /_emulator/forgotten":
        return json(200, state.forgotten());
      case "POST /_emulator/faults": {
        const value = bodyJson();
        const wrapped = z.object({ fault: z.unknown() }).safeParse(value);
        const fault = parse(Fault, wrapped.success ? wrapped.data.fault : value);
        faults.enqueue(fault, parse(FaultOptions, value));
        return json(200, { ok: true, pending: faults.pending });
      }
      case "DELETE /_emulator/faults":
        faults.clear();
        return json(200, { ok: true });
      case "POST /_emulator/reset":
        state.reset();
        faults.clear();
        resetStats();
        return json(200, { ok: true });
      case "GET /_emulator/stats":
        return json(200, stats);
      case "GET /_emulator/state":
        return json(200, state.snapshot());
    }
    const m = /^\/_emulator\/lists\/(\d+)\/members$/.exec(path);
    if (m && method === "GET") {
      const id = parseListId(m[1]);
      if (id === undefined || !state.hasList(id)) {
        return json(404, errorJson("NotFound", `list ${m[1]} does not exist`));
      }
      return json(200, state.members(id));
    }
    return notFound(method, path);
  }

  function resetStats(): void {
    stats.requests = 0;
    stats.subscribers = 0;
    stats.byPath = {};
    stats.channelUnsubscribe = [];
    stats.rateLimited = 0;
    stats.faultsInjected = 0;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? "" : url.slice(q + 1);
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (err) {
      if (err instanceof BodyError)
        send(req, res, json(413, errorJson("BatchTooLarge", err.message)));
      return;
    }
    const admin = path.startsWith("/_emulator/");
    const route = routeOf(path);
    if (!admin) {
      stats.requests++;
      stats.byPath[route] = (stats.byPath[route] ?? 0) + 1;
    }
    if (req.headers["api-key"] !== options.apiKey) {
      send(req, res, json(401, BAD_API_KEY));
      return;
    }
    try {
      if (admin) {
        send(req, res, adminRoute(method, path, body));
        return;
      }
      if (path.startsWith("/api/")) {
        const fault = faults.take(path, route);
        if (fault) {
          play(req, res, fault);
          return;
        }
        if (path === "/api/lists/subscribe" || path === "/api/lists/unsubscribe") {
          if (bucket && !bucket.tryTake()) {
            stats.rateLimited++;
            send(req, res, text(429, RATE_LIMIT_TEXT));
            return;
          }
          if (faultRate > 0 && Math.random() < faultRate) {
            play(
              req,
              res,
              Math.random() < 0.5 ? { kind: "status", status: 500 } : { kind: "reset" },
            );
            return;
          }
        }
      }
      send(req, res, apiRoute(method, path, query, body));
    } catch (err) {
      if (err instanceof AdminError) send(req, res, err.answer);
      else if (err instanceof FatalError && err.code === "identity_conflict") {
        send(req, res, json(409, errorJson("ExternalKeyConflict", err.message)));
      } else if (err instanceof AudienceSyncError) {
        send(req, res, json(400, errorJson("BadParams", err.message)));
      } else {
        send(req, res, json(500, errorJson("GenericError", (err as Error).message)));
      }
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.(`internal error: ${(err as Error).message}`);
      res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 4010, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await closed;
      if (options.statePath) await saveStateFile(options.statePath, state.snapshot());
    })();
    return closing;
  };

  return { url: `http://${urlHost}:${port}`, port, state, faults, stats, close };
}

const IdentityBody = z
  .object({ email: z.string().optional(), userId: z.string().optional() })
  .refine((v) => v.email !== undefined || v.userId !== undefined, {
    message: "email or userId is required",
  });

/** Carries a ready answer out of the admin routes. */
class AdminError extends Error {
  constructor(readonly answer: Answer) {
    super(`admin request refused with ${answer.status}`);
  }
}

function notFound(method: string, path: string): Answer {
  return json(404, errorJson("NotFound", `no route for ${method} ${path}`));
}
