import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSubscribeBody, isUnsubscribeBody } from "../../src/emulator/bulk-body.js";
import { SubscribeRequest, UnsubscribeRequest } from "../../src/iterable/wire.js";

/** Values near the schema's edges: the right types, the wrong ones, and absent. */
const anything = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.constant(2 ** 60),
  fc.string({ maxLength: 5 }),
  fc.constant([]),
  fc.constant({}),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Mostly valid, sometimes anything: a refusal then hinges on one field at a time. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: anything, weight: 1 });

const subscriber = mostly(
  fc.record(
    {
      email: mostly(fc.string({ maxLength: 5 })),
      userId: mostly(fc.string({ maxLength: 5 })),
      preferUserId: mostly(fc.boolean()),
      dataFields: mostly(fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 1 }))),
      extra: anything,
    },
    { requiredKeys: [] },
  ),
);

const body = mostly(
  fc.record(
    {
      listId: mostly(fc.integer()),
      subscribers: mostly(fc.array(subscriber, { maxLength: 3 })),
      updateExistingUsersOnly: mostly(fc.boolean()),
      channelUnsubscribe: mostly(fc.boolean()),
      campaignId: mostly(fc.integer()),
    },
    { requiredKeys: ["listId", "subscribers"] },
  ),
);

describe("hand-written bulk body checks", () => {
  it("accept exactly what the subscribe schema accepts", () => {
    fc.assert(
      fc.property(body, (v) => {
        expect(isSubscribeBody(v)).toBe(SubscribeRequest.safeParse(v).success);
      }),
      { numRuns: 3000 },
    );
  });

  it("accept exactly what the unsubscribe schema accepts", () => {
    fc.assert(
      fc.property(body, (v) => {
        expect(isUnsubscribeBody(v)).toBe(UnsubscribeRequest.safeParse(v).success);
      }),
      { numRuns: 3000 },
    );
  });

  it("accept a well-formed body", () => {
    const v = {
      listId: 1,
      subscribers: [{ email: "a@b.com", userId: "u", dataFields: { a: 1 }, preferUserId: true }],
      updateExistingUsersOnly: false,
    };
    expect(isSubscribeBody(v)).toBe(true);
    expect(isUnsubscribeBody({ listId: 1, subscribers: [], channelUnsubscribe: false })).toBe(true);
  });
});
