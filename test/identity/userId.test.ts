import { describe, expect, it } from "vitest";
import { MAX_USER_ID_LENGTH, normalizeUserId, userIdProblem } from "../../src/identity/userId.js";

describe("normalizeUserId", () => {
  it.each([
    [null, null],
    [undefined, null],
    [42, "42"],
    [9007199254740993n, "9007199254740993"],
    [" 42", " 42"],
    ["", null], // warehouses often spell "no userId" as ''
    ["abc", "abc"],
    [true, null],
    [{}, null],
  ])("%s -> %s", (value, expected) => {
    expect(normalizeUserId(value)).toBe(expected);
  });
});

describe("userIdProblem", () => {
  it("allows 52 characters and refuses 53", () => {
    expect(MAX_USER_ID_LENGTH).toBe(52);
    expect(userIdProblem("x".repeat(52))).toBeNull();
    expect(userIdProblem("x".repeat(53))).toBe("is 53 characters long (at most 52 allowed)");
  });

  it.each([
    ["42", null],
    ["user 42", null],
    ["a~!@#$%^&*()_+{}|:<>?`-=[]\\;',./\"", null],
    ["", "is empty"],
    [" 42", "has leading or trailing whitespace"],
    ["42 ", "has leading or trailing whitespace"],
    ["42\t", "has leading or trailing whitespace"],
    ["\u00a042", "has leading or trailing whitespace"],
    ["4\t2", "contains a character outside printable ASCII (letters, digits, punctuation, space)"],
    [
      "jos\u00e9",
      "contains a character outside printable ASCII (letters, digits, punctuation, space)",
    ],
    [
      "a\u007fb",
      "contains a character outside printable ASCII (letters, digits, punctuation, space)",
    ],
    [
      "a\u0000b",
      "contains a character outside printable ASCII (letters, digits, punctuation, space)",
    ],
  ])("%j -> %s", (id, expected) => {
    expect(userIdProblem(id)).toBe(expected);
  });
});
