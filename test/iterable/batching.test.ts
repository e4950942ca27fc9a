import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BatchItem,
  batchRecords,
  defaultSubscriberBytes,
  subscriberJson,
} from "../../src/iterable/batching.js";
import type { DeliveryRecord } from "../../src/iterable/types.js";

async function collect(it: AsyncIterable<BatchItem>): Promise<BatchItem[]> {
  const out: BatchItem[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function recs(n: number, pad = 0): DeliveryRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    key: String(i),
    email: `${"x".repeat(pad)}${i}@example.com`,
  }));
}

const envelope = { listId: 1, subscribers: [] as unknown[] };
const envelopeBytes = Buffer.byteLength(JSON.stringify(envelope));

function bodyBytes(records: DeliveryRecord[]): number {
  return Buffer.byteLength(
    JSON.stringify({ ...envelope, subscribers: records.map(subscriberJson) }),
  );
}

describe("batchRecords", () => {
  it("cuts by count", async () => {
    const out = await collect(batchRecords(recs(2500), { maxCount: 1000, envelopeBytes }));
    expect(out.map((b) => (b.kind === "batch" ? b.records.length : -1))).toEqual([1000, 1000, 500]);
  });

  it("accepts async iterables and yields nothing for nothing", async () => {
    async function* none(): AsyncGenerator<DeliveryRecord> {}
    expect(await collect(batchRecords(none(), { envelopeBytes }))).toEqual([]);
  });

  it("cuts by bytes so that the exact JSON body fits", async () => {
    const input = recs(100, 50);
    const maxBytes = bodyBytes(input.slice(0, 10)); // exactly ten fit
    const out = await collect(batchRecords(input, { maxCount: 1000, maxBytes, envelopeBytes }));
    for (const b of out) {
      if (b.kind !== "batch") throw new Error("unexpected reject");
      expect(bodyBytes(b.records)).toBeLessThanOrEqual(maxBytes);
    }
    expect(out[0]?.kind === "batch" && out[0].records.length).toBe(10);
  });

  it("counts multi-byte characters as bytes", async () => {
    const input: DeliveryRecord[] = Array.from({ length: 20 }, (_, i) => ({
      key: String(i),
      userId: `ü${"é".repeat(20)}${i}`,
    }));
    const maxBytes = 400;
    const out = await collect(batchRecords(input, { maxBytes, envelopeBytes }));
    for (const b of out)
      if (b.kind === "batch") expect(bodyBytes(b.records)).toBeLessThanOrEqual(maxBytes);
    expect(out.length).toBeGreaterThan(1);
  });

  it("rejects a record that alone is over the limit, and keeps going", async () => {
    const input: DeliveryRecord[] = [
      { key: "a", email: "a@example.com" },
      { key: "big", email: `${"x".repeat(500)}@example.com` },
      { key: "b", email: "b@example.com" },
    ];
    const out = await collect(batchRecords(input, { maxBytes: 200, envelopeBytes }));
    const rejected = out.filter((b) => b.kind === "rejected");
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ code: "request_rejected", record: { key: "big" } });
    const sent = out.flatMap((b) => (b.kind === "batch" ? b.records.map((r) => r.key) : []));
    expect(sent).toEqual(["a", "b"]);
  });

  it("rejects a record without identifiers", async () => {
    const out = await collect(batchRecords([{ key: "k" }], { envelopeBytes }));
    expect(out).toEqual([
      expect.objectContaining({ kind: "rejected", code: "missing_identifier" }),
    ]);
  });

  it("keeps every record once, in order, within both limits (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ maxLength: 40 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 60, max: 400 }),
        async (names, maxCount, maxBytes) => {
          const input = names.map((n, i) => ({ key: String(i), userId: n || "u" }));
          const out = await collect(batchRecords(input, { maxCount, maxBytes, envelopeBytes }));
          const keys: string[] = [];
          for (const b of out) {
            if (b.kind === "batch") {
              expect(b.records.length).toBeGreaterThan(0);
              expect(b.records.length).toBeLessThanOrEqual(maxCount);
              expect(bodyBytes(b.records)).toBeLessThanOrEqual(maxBytes);
              keys.push(...b.records.map((r) => r.key));
            } else {
              expect(bodyBytes([b.record])).toBeGreaterThan(maxBytes);
              keys.push(b.record.key);
            }
          }
          expect(keys).toEqual(input.map((r) => r.key));
        },
      ),
    );
  });

  it("sizes a subscriber exactly as its JSON in UTF-8, escapes and astral characters included", () => {
    const text = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.string({ unit: "grapheme" }),
      fc.constantFrom(
        "",
        'a"b',
        "\\",
        "\u007f",
        "\u0000",
        "\u2028",
        "\ud800",
        "\t",
        "é",
        "plain@x.io",
      ),
    );
    fc.assert(
      fc.property(
        fc.option(text, { nil: undefined }),
        fc.option(text, { nil: undefined }),
        (email, userId) => {
          const record: DeliveryRecord = { key: "k" };
          if (email !== undefined) record.email = email;
          if (userId !== undefined) record.userId = userId;
          const exact = Buffer.byteLength(JSON.stringify(subscriberJson(record)), "utf8");
          expect(defaultSubscriberBytes(record)).toBe(exact);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
