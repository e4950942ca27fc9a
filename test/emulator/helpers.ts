import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js";

export const KEY = "test-server-key-0123456789";

export async function start(options: Partial<EmulatorOptions> = {}): Promise<Emulator> {
  return await startEmulator({ port: 0, projectType: "hybrid", apiKey: KEY, ...options });
}

export interface Call {
  status: number;
  contentType: string | null;
  text: string;
  headers: Headers;
}

/** One request with the accepted key unless `key` says otherwise (null: no header). */
export async function call(
  em: Emulator,
  method: string,
  path: string,
  body?: unknown,
  key: string | null = KEY,
): Promise<Call> {
  const headers: Record<string, string> = {};
  if (key !== null) headers["Api-Key"] = key;
  let payload: string | undefined;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(`${em.url}${path}`, { method, headers, body: payload });
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    text: await res.text(),
    headers: res.headers,
  };
}

export async function callJson<T = unknown>(
  em: Emulator,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const r = await call(em, method, path, body);
  return { status: r.status, json: JSON.parse(r.text) as T };
}

export interface Bulk {
  successCount: number;
  failCount: number;
  failedUpdates: Record<string, string[]>;
  invalidEmails: string[];
  invalidUserIds: string[];
  createdFields: string[];
  filteredOutFields: string[];
}

export async function subscribe(
  em: Emulator,
  listId: number,
  subscribers: { email?: string; userId?: string; preferUserId?: boolean }[],
  updateExistingUsersOnly?: boolean,
): Promise<Bulk> {
  const r = await callJson<Bulk>(em, "POST", "/api/lists/subscribe", {
    listId,
    subscribers,
    ...(updateExistingUsersOnly === undefined ? {} : { updateExistingUsersOnly }),
  });
  if (r.status !== 200) throw new Error(`subscribe answered ${r.status}`);
  return r.json;
}

export async function unsubscribe(
  em: Emulator,
  listId: number,
  subscribers: { email?: string; userId?: string }[],
): Promise<Bulk> {
  const r = await callJson<Bulk>(em, "POST", "/api/lists/unsubscribe", {
    listId,
    subscribers,
    channelUnsubscribe: false,
  });
  if (r.status !== 200) throw new Error(`unsubscribe answered ${r.status}`);
  return r.json;
}

/** The non-empty failedUpdates arrays, for compact assertions. */
export function failures(b: Bulk): Record<string, string[]> {
  return Object.fromEntries(Object.entries(b.failedUpdates).filter(([, v]) => v.length > 0));
}
