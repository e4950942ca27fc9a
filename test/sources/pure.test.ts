import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { duckdbDialect, mysqlDialect, postgresDialect } from "../../src/sources/dialects.js";
import { modelSql } from "../../src/sources/index.js";
import { formatMySql, mysqlValue } from "../../src/sources/mysql.js";
import { numberFromBigInt, numberFromText } from "../../src/sources/values.js";

const pg = postgresDialect({ utf8: true, icu: true });
const my = mysqlDialect({ backslashEscapes: true, lowerCollation: "utf8mb4_unicode_520_ci" });
const myStrict = mysqlDialect({
  backslashEscapes: false,
  lowerCollation: "utf8mb4_unicode_520_ci",
});

describe("quoting", () => {
  it("quotes identifiers by doubling the quote character", () => {
    expect(duckdbDialect.quoteIdent('a"b')).toBe('"a""b"');
    expect(pg.table("marts", 'we"ird')).toBe('"marts"."we""ird"');
    expect(my.quoteIdent("a`b")).toBe("`a``b`");
    expect(my.table("db", "t")).toBe("`db`.`t`");
  });

  it("writes literals that survive each dialect's escaping rules", () => {
    expect(duckdbDialect.literal("it's \\")).toBe("'it''s \\'");
    expect(pg.literal("it's")).toBe("'it''s'");
    expect(pg.literal("a\\b")).toBe("E'a\\\\b'");
    expect(my.literal("it's \\")).toBe("'it''s \\\\'");
    expect(myStrict.literal("it's \\")).toBe("'it''s \\'");
    expect(pg.literal(null)).toBe("NULL");
    expect(pg.literal(-1.5)).toBe("-1.5");
    expect(() => pg.literal(Number.NaN)).toThrow();
  });

  it("numbers placeholders per dialect", () => {
    expect(pg.param(3)).toBe("$3");
    expect(duckdbDialect.param(1)).toBe("$1");
    expect(my.param(2)).toBe("?");
  });
});

describe("modelSql", () => {
  it("turns a table into select * with the name quoted at the first dot", () => {
    expect(modelSql({ table: "marts.vip.customers" }, pg)).toBe(
      'select * from "marts"."vip.customers"',
    );
    expect(modelSql({ table: "users" }, my)).toBe("select * from `users`");
  });

  it("strips trailing semicolons from a model", () => {
    expect(modelSql({ model: "  select 1 ;; \n" }, pg)).toBe("select 1");
    expect(modelSql({ model: "select ';'" }, pg)).toBe("select ';'");
  });

  it("needs a model or a table", () => {
    expect(() => modelSql({}, pg)).toThrow(ConfigError);
  });
});

describe("formatMySql", () => {
  it("fills placeholders outside literals, identifiers and comments", () => {
    expect(
      formatMySql("select '?', \"?\", `?`, ? /* ? */ -- ?\n, ? # ?\n", ["a'b", null], true),
    ).toBe("select '?', \"?\", `?`, 'a''b' /* ? */ -- ?\n, NULL # ?\n");
    expect(formatMySql("select 'it\\'s ?', ?", [1], true)).toBe("select 'it\\'s ?', 1");
    expect(formatMySql("select 'a\\', ?", [1], false)).toBe("select 'a\\', 1");
  });

  it("refuses a count mismatch", () => {
    expect(() => formatMySql("select ?, ?", [1], true)).toThrow(/placeholders/);
    expect(() => formatMySql("select ?", [1, 2], true)).toThrow(/placeholders/);
  });

  it("writes values as literals", () => {
    expect(mysqlValue(true, true)).toBe("TRUE");
    expect(mysqlValue(12n, true)).toBe("12");
    expect(mysqlValue(new Date("2024-01-02T03:04:05.678Z"), true)).toBe(
      "'2024-01-02 03:04:05.678'",
    );
    expect(mysqlValue(Buffer.from([1, 255]), true)).toBe("X'01ff'");
    expect(mysqlValue("a\0b\\", true)).toBe("'a\\0b\\\\'");
  });
});

describe("value shapes", () => {
  it("keeps numbers that do not print back exactly as text", () => {
    expect(numberFromText("123")).toBe(123);
    expect(numberFromText("-1.5")).toBe(-1.5);
    expect(numberFromText("1.50")).toBe("1.50");
    expect(numberFromText("9007199254740993")).toBe("9007199254740993");
    expect(numberFromBigInt(42n)).toBe(42);
    expect(numberFromBigInt(2n ** 60n)).toBe("1152921504606846976");
  });
});
