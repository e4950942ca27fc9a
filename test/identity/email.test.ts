import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isValidEmail, normalizeEmail } from "../../src/identity/email.js";

type Vectors = { valid: string[]; invalid: string[] };
const vectors: Vectors = JSON.parse(
  readFileSync(new URL("../fixtures/email-vectors.json", import.meta.url), "utf8"),
);

// The only vectors whose verdict changes when the address is trimmed first (see the vector notes).
const PADDED = new Set([" joeblow@apache.org", "joeblow@apache.org "]);

describe("isValidEmail against Commons Validator 1.11.0", () => {
  it("has the whole conformance set", () => {
    expect(vectors.valid.length + vectors.invalid.length).toBe(316);
  });

  it.each(vectors.valid.map((v) => [JSON.stringify(v), v]))("accepts %s", (_label, address) => {
    expect(isValidEmail(address)).toBe(true);
  });

  it.each(vectors.invalid.map((v) => [JSON.stringify(v), v]))("refuses %s", (_label, address) => {
    expect(isValidEmail(address)).toBe(false);
  });

  it("still accepts every valid vector after normalisation", () => {
    const refused = vectors.valid.filter((v) => {
      const normalized = normalizeEmail(v);
      return normalized === null || !isValidEmail(normalized);
    });
    expect(refused).toEqual([]);
  });

  it("refuses every invalid vector after normalisation, except the two space-padded ones", () => {
    const accepted = vectors.invalid.filter((v) => {
      const normalized = normalizeEmail(v);
      return normalized !== null && isValidEmail(normalized);
    });
    expect(new Set(accepted)).toEqual(PADDED);
    for (const padded of PADDED) expect(isValidEmail(padded)).toBe(false);
  });
});

describe("isValidEmail beyond the vectors", () => {
  it.each([
    ["a@x.museum", true],
    ['""@apache.org', true],
    ["a@[IPv6:1:2:3:4:5:6:7:8]", true],
    ["a@[IPv6:::ffff:192.0.2.1]", true],
    ["a@[IPv6:1:2:3:4:5:6:7::8]", false],
    ["a@[IPv6:1:::2]", false],
    ["a@[IPv6:12345::1]", false],
    ["a@[1.2.3.04]", false],
    ["a@[1.2.3.256]", false],
    ["a@in-addr.arpa", true],
    ["a@x.xn--p1ai", true],
    ["a@b", false],
    ["a@b@", false],
    ["@apache.org", false],
    ["joe", false],
    ["", false],
    [`a@${"b".repeat(63)}.com`, true],
    [`a@${"b".repeat(64)}.com`, false],
    [`a@${"b.".repeat(125)}com`, true],
    [`a@${"b.".repeat(126)}com`, false],
    ["a@bü%63her.ch", false],
    ["a@b\u00fccher.ch\u3002", true],
    ["a\u2028b@apache.org", false],
    ['"a\u0009b"@apache.org', false],
  ])("%j -> %s", (address, expected) => {
    expect(isValidEmail(address)).toBe(expected);
  });

  it("stays fast on quote and backslash runs that would make a regex backtrack", () => {
    // Correctness, not timing: these must simply come back with the right answer.
    expect(isValidEmail(`${'"\\"."'.repeat(12)}@apache.org`)).toBe(false);
    expect(isValidEmail(`"${"\\".repeat(60)}"@apache.org`)).toBe(true);
  });
});

describe("remembered domain verdicts", () => {
  it("give the same answers on repeat and after the memory is full", () => {
    const sample = ["joe@apache.org", "joe@apache.c", "joe@b\u00fccher.ch", "joe@www.\ufffd.ch"];
    const first = sample.map(isValidEmail);
    for (let i = 0; i < 10_050; i++) isValidEmail(`joe@host${i}.example.com`);
    expect(sample.map(isValidEmail)).toEqual(first);
    expect(first).toEqual([true, false, true, false]);
  });
});

describe("normalizeEmail", () => {
  it.each([
    [null, null],
    [undefined, null],
    [true, null],
    [{ toString: () => "a@b.com" }, null],
    [12n, null],
    ["", null],
    ["   ", null],
    ["  Joe@Apache.ORG \t", "joe@apache.org"],
    [42, "42"],
  ])("%s -> %s", (value, expected) => {
    expect(normalizeEmail(value)).toBe(expected);
  });

  it("is idempotent", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.emailAddress(), fc.integer(), fc.double()), (value) => {
        const once = normalizeEmail(value);
        expect(once === null ? null : normalizeEmail(once)).toBe(once);
      }),
    );
  });

  it("agrees with the validator on generated addresses", () => {
    // fast-check's addresses follow RFC 5322 with random TLDs; those with a real TLD must pass.
    fc.assert(
      fc.property(fc.emailAddress(), fc.constantFrom("com", "org", "io", "ch"), (address, tld) => {
        const local = address.slice(0, address.lastIndexOf("@"));
        fc.pre(local.length <= 64);
        expect(isValidEmail(`${local}@example.${tld}`)).toBe(true);
      }),
    );
  });
});
