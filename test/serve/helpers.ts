/** Shared set-up of the serve tests: a config file, a model table, calls to the API. */
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Emulator } from "../../src/emulator/index.js";
import type { Source } from "../../src/sources/source.js";
import { writeTable } from "../support/sources.js";

export const KEY = "serve-test-secret-key-4f1c9a7e";
export const TOKEN = "serve-test-token-1234";

export async function tempDir(): Promise<string> {
  return await mkdtemp(path.join(os.tmpdir(), "as-serve-"));
}

export function configYaml(opts: {
  source: Record<string, unknown>;
  emulator: Emulator;
  syncs: Record<string, { table: string; schedule?: string; list?: string }>;
  destination?: string;
}): string {
  const syncs = Object.entries(opts.syncs)
    .map(
      ([name, s]) => `  ${name}:
    source: wh
    destination: it
    table: ${s.table}
    list: { create: { name: "${s.list ?? `list ${name}`}" } }
    identifiers: { email: email }
    schedule: ${s.schedule ?? "{ type: manual }"}`,
    )
    .join("\n");
  return `sources:
  wh: ${JSON.stringify(opts.source)}
destinations:
  it:
    type: iterable
    apiKey: ${KEY}
    projectType: email
    baseUrl: ${opts.emulator.url}
${opts.destination ?? ""}
syncs:
${syncs}
`;
}

export async function writeConfig(dir: string, yaml: string): Promise<string> {
  const file = path.join(dir, "audience-sync.yaml");
  await writeFile(file, yaml);
  return file;
}

export function emails(n: number, prefix = "user"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}@example.com`);
}

export async function writeModel(
  open: () => Promise<Source>,
  schema: string,
  table: string,
  values: string[],
): Promise<void> {
  const s = await open();
  try {
    await writeTable(
      s,
      schema,
      table,
      ["email"],
      values.map((e) => [e]),
    );
  } finally {
    await s.close();
  }
}

/** Emails on the emulator's list of that name, sorted. */
export function listEmails(emulator: Emulator, listName: string): string[] {
  const list = emulator.state.lists().find((l) => l.name === listName);
  if (!list) return [];
  return emulator.state
    .members(list.id)
    .map((m) => m.email ?? "")
    .sort();
}

export interface Answer<T = unknown> {
  status: number;
  json: T;
  headers: Headers;
}

export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  route: string,
  opts: { token?: string | null; body?: string } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${route}`, { method, headers, body: opts.body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json: json as T, headers: res.headers };
}

/** Polls a run through the API until it is no longer running. */
export async function waitForRun(
  base: string,
  sync: string,
  runId: number,
): Promise<Record<string, unknown>> {
  for (;;) {
    const r = await api(base, "GET", `/api/syncs/${sync}/runs/${runId}`);
    if (r.status === 200 && r.json.status !== "running") return r.json;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Collects pino's JSON lines. */
export function logCapture() {
  const lines: string[] = [];
  return {
    lines,
    stream: { write: (line: string) => void lines.push(line) },
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
