import { backupCrontabs, bad, na, ok, PolicyRule, schedulesJob } from "../types";

/** PGH-BAK-1: the backup container schedules restore drills, so restorability is proven, not assumed. */
export const restoreDrillsScheduled: PolicyRule = {
  id: "PGH-BAK-1",
  level: "warning",
  title: "Restore drills scheduled",
  explanation: "A backup nobody has restored is a hope. Drills restore to a random point, verify the copy and leave evidence that monitoring alerts on; without them a broken archive is found during the outage.",
  evaluate(stack) {
    const tabs = backupCrontabs(stack);
    if (!tabs.length) return na("no backup container");
    return tabs.map((t) => (schedulesJob(t.content, "drill") ? ok(t.container) : bad(t.container, "its crontab schedules no restore drill (BackupCron drill: false)")));
  },
};
