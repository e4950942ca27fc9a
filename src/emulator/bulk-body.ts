/**
 * Hand-written checks of lists/subscribe and lists/unsubscribe bodies, equivalent to the zod
 * schemas of wire.ts (a property test holds them to that). They exist for speed: zod copies every
 * subscriber object, which at 1,000 subscribers a request is a large share of the emulator's
 * allocation. On a refusal the caller runs the zod schema to word the error.
 */
import type { SubscribeRequest, UnsubscribeRequest } from "../iterable/wire.js";

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optional(v: unknown, type: "string" | "boolean"): boolean {
  return v === undefined || typeof v === type;
}

function optionalInt(v: unknown): boolean {
  return v === undefined || Number.isSafeInteger(v);
}

function subscribersOk(v: unknown, full: boolean): boolean {
  if (!Array.isArray(v)) return false;
  for (const s of v) {
    if (!isRecord(s)) return false;
    if (!optional(s.email, "string") || !optional(s.userId, "string")) return false;
    if (full) {
      if (!optional(s.preferUserId, "boolean")) return false;
      if (s.dataFields !== undefined && !isRecord(s.dataFields)) return false;
    }
  }
  return true;
}

export function isSubscribeBody(v: unknown): v is SubscribeRequest {
  return (
    isRecord(v) &&
    Number.isSafeInteger(v.listId) &&
    optional(v.updateExistingUsersOnly, "boolean") &&
    subscribersOk(v.subscribers, true)
  );
}

export function isUnsubscribeBody(v: unknown): v is UnsubscribeRequest {
  return (
    isRecord(v) &&
    Number.isSafeInteger(v.listId) &&
    optional(v.channelUnsubscribe, "boolean") &&
    optionalInt(v.campaignId) &&
    subscribersOk(v.subscribers, false)
  );
}
