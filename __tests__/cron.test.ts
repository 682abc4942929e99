import { CronError, cronLine, maxIntervalMinutes, parseCron } from "../postgres-config/cron";

describe("cron expressions", () => {
  test.each([
    ["0 1 * * 0", 7 * 1440],
    ["0 1 * * 1-6", 2 * 1440],
    ["30 3 * * *", 1440],
    ["*/15 * * * *", 15],
    ["0 2 1 * *", 31 * 1440],
    ["0 0 * * sun", 7 * 1440],
    ["0 0 * jan-dec 7", 7 * 1440],
    ["0 1,13 * * *", 12 * 60],
  ])("%s fires at most every %i minutes", (expr, gap) => {
    expect(maxIntervalMinutes(parseCron(expr))).toBe(gap);
  });

  test.each([
    ["", /expected 5 fields/],
    ["0 1 * *", /expected 5 fields/],
    ["61 1 * * *", /minute value 61 is outside 0-59/],
    ["0 24 * * *", /hour value 24 is outside 0-23/],
    ["0 1 0 * *", /day of month value 0 is outside 1-31/],
    ["0 1 * 13 *", /month value 13 is outside 1-12/],
    ["0 1 * * 8", /day of week value 8 is outside 0-7/],
    ["0 1 * * mon-sun-x", /range "mon-sun-x" is malformed/],
    ["0 5-1 * * *", /runs backwards/],
    ["0 */0 * * *", /step .* must be at least 1/],
    ["@daily x y z w", /minute value "@daily" is not a number/],
  ])("%p is refused", (expr, msg) => {
    expect(() => parseCron(expr)).toThrow(CronError);
    expect(() => parseCron(expr)).toThrow(msg);
  });

  test("an expression that never fires has an infinite interval", () => {
    expect(maxIntervalMinutes(parseCron("0 0 30 2 *"))).toBe(Infinity);
  });

  test("cron.d line has a user column", () => {
    expect(cronLine(" 0  1 * * 0 ", "root", "/x full")).toBe("0 1 * * 0 root /x full");
  });
});
