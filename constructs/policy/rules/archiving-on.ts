import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

/** PGH-PG-1: every PostgreSQL server archives WAL through pgBackRest. */
export const archivingOn: PolicyRule = {
  id: "PGH-PG-1",
  level: "error",
  title: "WAL archiving on",
  explanation: "Without archive_mode=on and a pgBackRest archive_command there is no point-in-time recovery and no RPO: only the last backup could be restored.",
  evaluate(stack) {
    const out = filesNamed(stack, "postgresql.conf").map((f) => {
      const s = settings(f.content);
      const subject = `${f.container}:${f.path}`;
      if (s.get("archive_mode") !== "on") return bad(subject, `archive_mode is ${s.get("archive_mode") ?? "unset"}`);
      if (!/pgbackrest .*archive-push/.test(s.get("archive_command") ?? "")) return bad(subject, "archive_command does not push to pgBackRest");
      const timeout = Number(s.get("archive_timeout"));
      if (!(timeout > 0)) return bad(subject, "archive_timeout is not set: a quiet database would never archive its last segment");
      return ok(subject);
    });
    return out.length ? out : na("no PostgreSQL server");
  },
};
