/**
 * A local Iterable-compatible API: the sandbox Iterable lacks, and the test double of every
 * component and end-to-end test. It reproduces the list endpoints a sync uses, their per-project
 * -type semantics (NOTES.md) and their failure modes (429 text bodies, 5xx, resets, hangs).
 */
import type { ProjectType } from "../iterable/wire.js";
import type { FaultQueue } from "./faults.js";
import { startServer } from "./server.js";
import type { EmulatorState } from "./state.js";

export type { Fault, FaultOptions } from "./faults.js";
export { FaultQueue } from "./faults.js";
export type { BulkResult, EmulatorList, Identity, StateSnapshot } from "./state.js";
export { EmulatorState, isValidIterableUserId } from "./state.js";

export interface EmulatorOptions {
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 4010; 0 picks any free port. */
  port?: number;
  projectType: ProjectType;
  /** The one accepted server-side key; any other gets 401 BadApiKey. */
  apiKey: string;
  /** Requests a second over subscribe + unsubscribe (leaky bucket); excess gets a 429 text body. */
  rateLimit?: number;
  /** 0..1: share of subscribe/unsubscribe requests answered 500 or with a dropped connection. */
  faultRate?: number;
  /** Added to every answer. */
  latencyMs?: number;
  /** JSON file loaded at start when present and saved on close. */
  statePath?: string;
  /** A newly created list answers 400 invalidListId for this long, as Iterable sometimes does. */
  newListInvalidMs?: number;
  /** Receives one line per answered request (the CLI's --verbose). */
  log?: (line: string) => void;
}

export interface EmulatorStats {
  /** Requests under /api/ (admin requests are not counted). */
  requests: number;
  /** Subscribers received by subscribe and unsubscribe requests that reached the list. */
  subscribers: number;
  /** Requests per path, ids replaced by {id}: "/api/lists/subscribe", "/api/lists/{id}/size". */
  byPath: Record<string, number>;
  /** channelUnsubscribe as each unsubscribe request carried it (last 1,000). */
  channelUnsubscribe: (boolean | undefined)[];
  /** Requests refused by --rate-limit. */
  rateLimited: number;
  /** Scripted and random faults played. */
  faultsInjected: number;
}

export interface Emulator {
  /** e.g. http://127.0.0.1:4010 */
  url: string;
  port: number;
  /** In-process admin: read and seed. */
  state: EmulatorState;
  /** Scripted faults for tests. */
  faults: FaultQueue;
  stats: EmulatorStats;
  /** Stops listening, drops open connections (hung ones too) and saves the state file. */
  close(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions): Promise<Emulator> {
  return await startServer(options);
}
