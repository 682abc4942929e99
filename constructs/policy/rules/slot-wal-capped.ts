import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

/** PGH-PG-2: a replication slot can never hold unlimited WAL. */
export const slotWalCapped: PolicyRule = {
  id: "PGH-PG-2",
  level: "error",
  title: "Replication slot WAL capped",
  explanation: "A slot whose replica is gone keeps WAL forever unless max_slot_wal_keep_size caps it; an uncapped slot fills the primary's disk and stops the database.",
  evaluate(stack) {
    const out = filesNamed(stack, "postgresql.conf").map((f) => {
      const v = settings(f.content).get("max_slot_wal_keep_size");
      return v !== undefined && v !== "-1" ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, `max_slot_wal_keep_size is ${v ?? "unset (unlimited)"}`);
    });
    return out.length ? out : na("no PostgreSQL server");
  },
};
