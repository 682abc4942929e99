/**
 * pgharbor-ops' recoverability window on canned pgBackRest answers: continuity per timeline, gaps
 * named, the oldest backup's end and the newest segment's upload time. (The runtime suite runs the
 * same function against a real archive.)
 */
import { spawnSync } from "child_process";
import { join } from "path";

const TOOL = join(__dirname, "..", "postgres-config", "pgharbor-ops.py");

function windowOf(backupStart: string, segments: string[]): { code: number; out: any; err: string } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const info = [{ backup: [{ archive: { start: backupStart }, timestamp: { stop: 1000 } }], archive: [{ id: "15-1" }] }];
  const listing = Object.fromEntries(segments.map((n, i) => [`0000000100000000/${n}-${"a".repeat(40)}.zst`, { type: "file", time: 2000 + i }]));
  const driver = `
import importlib.machinery, json, sys
ops = importlib.machinery.SourceFileLoader("ops", sys.argv[1]).load_module()
info, listing = json.loads(sys.argv[2]), json.loads(sys.argv[3])
ops.pgbackrest = lambda cfg, *args, **kw: info if args[0] == "info" else listing
try:
    print(json.dumps(ops.window({"stanza": "pgharbor"})))
except ops.Failure as e:
    print(e, file=sys.stderr)
    sys.exit(1)
`;
  const r = spawnSync("python3", ["-c", driver, TOOL, JSON.stringify(info), JSON.stringify(listing)], { encoding: "utf8" });
  return { code: r.status ?? -1, out: r.status === 0 ? JSON.parse(r.stdout) : undefined, err: r.stderr };
}

/** WAL file name of segment number n (16 MiB segments: 256 per log file) on timeline tl. */
const hex8 = (v: number) => v.toString(16).toUpperCase().padStart(8, "0");
const seg = (tl: number, n: number) => `${hex8(tl)}${hex8(Math.floor(n / 256))}${hex8(n % 256)}`;

describe("recoverability window (pgharbor-ops)", () => {
  test("continuous: oldest = end of the oldest backup, newest = upload time of the newest segment", () => {
    const r = windowOf(seg(1, 3), [seg(1, 1), seg(1, 3), seg(1, 4), seg(1, 5)]);
    expect(r.out).toEqual({ oldest: 1000, newest: 2003, newestSegment: seg(1, 5), continuous: true, missingSegments: [], backups: 1 });
  });
  test("a gap after the oldest backup is named; one before it does not matter", () => {
    const r = windowOf(seg(1, 3), [seg(1, 1), seg(1, 3), seg(1, 5), seg(1, 6)]);
    expect(r.out).toEqual(expect.objectContaining({ continuous: false, missingSegments: [seg(1, 4)] }));
  });
  test("after a promotion: the new timeline is checked too", () => {
    expect(windowOf(seg(1, 3), [seg(1, 3), seg(1, 4), seg(2, 4), seg(2, 5), seg(2, 6)]).out).toEqual(expect.objectContaining({ continuous: true, newestSegment: seg(2, 6) }));
    expect(windowOf(seg(1, 3), [seg(1, 3), seg(1, 4), seg(2, 4), seg(2, 6)]).out).toEqual(expect.objectContaining({ continuous: false, missingSegments: [seg(2, 5)] }));
  });
  test("segments past 0xFF roll into the next log file", () => {
    expect(seg(1, 0x100)).toBe("000000010000000100000000");
    expect(windowOf(seg(1, 0xfe), [seg(1, 0xfe), seg(1, 0xff), seg(1, 0x100)]).out).toEqual(expect.objectContaining({ continuous: true }));
    expect(windowOf(seg(1, 0xfe), [seg(1, 0xfe), seg(1, 0x100)]).out).toEqual(expect.objectContaining({ missingSegments: ["0000000100000000000000FF"] }));
  });
  test("backups but no WAL: a clear refusal", () => {
    const info = windowOf(seg(1, 1), []);
    expect(info.code).toBe(1);
    expect(info.err).toMatch(/the archive holds backups but no WAL/);
  });
});
