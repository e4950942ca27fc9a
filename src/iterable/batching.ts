/** Cutting a stream of records into request-sized batches (pure apart from iteration). */
import type { FailureCode } from "../errors.js";
import type { DeliveryRecord } from "./types.js";

export interface BatchingOptions {
  /** Subscribers per request; Iterable's cap is unknown, integrations use 1,000 (NOTES.md). */
  maxCount?: number;
  /** Bytes of the whole JSON request body. */
  maxBytes?: number;
  /** Bytes of the request body with an empty `subscribers` array. */
  envelopeBytes: number;
  /** Bytes of one subscriber's JSON; defaults to the JSON of {email, userId}. */
  subscriberBytes?: (record: DeliveryRecord) => number;
}

/** A batch to send, or a record refused before sending (with the failure code to report). */
export type BatchItem =
  | { kind: "batch"; records: DeliveryRecord[] }
  | { kind: "rejected"; record: DeliveryRecord; code: FailureCode; message: string };

/** The JSON Iterable receives for one record: only the identifiers it has. */
export function subscriberJson(record: DeliveryRecord): { email?: string; userId?: string } {
  const out: { email?: string; userId?: string } = {};
  if (record.email !== undefined) out.email = record.email;
  if (record.userId !== undefined) out.userId = record.userId;
  return out;
}

/** Characters that JSON writes as themselves and UTF-8 as one byte each. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Bytes of `value` as a JSON string, quotes included. */
function jsonStringBytes(value: string): number {
  return PLAIN_ASCII.test(value)
    ? value.length + 2
    : Buffer.byteLength(JSON.stringify(value), "utf8");
}

/** Exactly `Buffer.byteLength(JSON.stringify(subscriberJson(record)))`, without building it:
 *  this runs once per record. */
export function defaultSubscriberBytes(record: DeliveryRecord): number {
  const { email, userId } = record;
  if (email === undefined) return userId === undefined ? 2 : jsonStringBytes(userId) + 11; // {"userId":…}
  if (userId === undefined) return jsonStringBytes(email) + 10; // {"email":…}
  return jsonStringBytes(email) + jsonStringBytes(userId) + 20; // {"email":…,"userId":…}
}

/**
 * Groups records into batches of at most `maxCount` whose request body stays within `maxBytes`,
 * counting each subscriber's JSON and the commas between them as they arrive. Reads one record
 * ahead of what it yields, never more. A record that alone would exceed `maxBytes` is yielded as
 * rejected (`request_rejected`) rather than sent, and so is a record without any identifier.
 */
export async function* batchRecords(
  records: AsyncIterable<DeliveryRecord> | Iterable<DeliveryRecord>,
  opts: BatchingOptions,
): AsyncGenerator<BatchItem> {
  const maxCount = Math.max(1, opts.maxCount ?? 1000);
  const maxBytes = opts.maxBytes ?? 4_000_000;
  const sizeOf = opts.subscriberBytes ?? defaultSubscriberBytes;
  let batch: DeliveryRecord[] = [];
  let bytes = opts.envelopeBytes;

  for await (const record of records) {
    if (record.email === undefined && record.userId === undefined) {
      yield {
        kind: "rejected",
        record,
        code: "missing_identifier",
        message: "the record has neither an email nor a userId to send",
      };
      continue;
    }
    const size = sizeOf(record);
    if (opts.envelopeBytes + size > maxBytes) {
      yield {
        kind: "rejected",
        record,
        code: "request_rejected",
        message: `the record alone makes a ${opts.envelopeBytes + size}-byte request, over the ${maxBytes}-byte limit`,
      };
      continue;
    }
    const added = batch.length === 0 ? size : size + 1; // +1: the comma before it
    if (batch.length >= maxCount || bytes + added > maxBytes) {
      yield { kind: "batch", records: batch };
      batch = [];
      bytes = opts.envelopeBytes;
    }
    bytes += batch.length === 0 ? size : size + 1;
    batch.push(record);
  }
  if (batch.length > 0) yield { kind: "batch", records: batch };
}
