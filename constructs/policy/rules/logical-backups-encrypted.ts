import { backupCrontabs, bad, filesNamed, na, ok, PolicyRule, schedulesJob } from "../types";

/** PGH-BAK-2: logical backups are scheduled, and encrypted to at least one age recipient. */
export const logicalBackupsEncrypted: PolicyRule = {
  id: "PGH-BAK-2",
  level: "warning",
  title: "Logical backups scheduled and encrypted",
  explanation: "Physical backups restore the whole cluster at its major version; a logical dump restores one database, one table's worth of mistake, or into another major. Dumps leave the host only encrypted to the recipients' public keys.",
  evaluate(stack) {
    const tabs = backupCrontabs(stack);
    if (!tabs.length) return na("no backup container");
    const ops = filesNamed(stack, "ops.json");
    return tabs.map((t) => {
      if (!schedulesJob(t.content, "logical")) return bad(t.container, "its crontab schedules no logical backup (BackupCron logical unset)");
      const conf = ops.find((o) => o.container === t.container);
      const recipients: unknown = conf ? JSON.parse(conf.content).logical?.recipients : undefined;
      return Array.isArray(recipients) && recipients.length > 0 ? ok(t.container) : bad(t.container, "logical backups have no age recipient to encrypt to");
    });
  },
};
