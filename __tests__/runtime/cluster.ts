/**
 * A deployed failover cluster as the runtime suite and the failover benchmark see it: who leads
 * (patronictl in the members, the first one that answers), whether every replica streams, each
 * member's writability asked over its own socket, and the write gap and lost commits of an
 * AckedWriter.
 */
import { execFileSync } from "child_process";
import { AckedWriter, appQuery, RuntimeStack, sleep } from "./scenario";
import { PATRONI_PATHS } from "../../postgres-config/patroni";

export interface Member {
  Member: string;
  Role: string;
  State: string;
  TL?: number;
  "Lag in MB"?: number;
  "Pending restart"?: string;
  "Pending restart reason"?: string;
}

export const docker = (...args: string[]) => execFileSync("docker", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

/** [time, writable members, members that did not answer] */
export type Sample = [number, string[], string[]];

export class ClusterProbe {
  constructor(
    private readonly s: RuntimeStack,
    public readonly members: string[],
  ) {}

  /** `patronictl list` from the first member that answers. */
  async list(): Promise<Member[]> {
    for (const m of this.members) {
      const r = await this.s.d.exec(this.s.name(m), ["patronictl", "-c", PATRONI_PATHS.config, "list", "-f", "json"], { user: "postgres", timeoutMs: 15_000 }).catch(() => undefined);
      if (r && r.code === 0) return JSON.parse(r.stdout) as Member[];
    }
    throw new Error("no member answered patronictl list");
  }

  async leader(): Promise<string | undefined> {
    return (await this.list()).find((m) => m.Role === "Leader" && m.State === "running")?.Member;
  }

  /** One running leader and `replicas` streaming replicas. */
  async healthy(replicas: number): Promise<boolean> {
    const l = await this.list();
    return l.filter((m) => m.Role === "Leader" && m.State === "running").length === 1 && l.filter((m) => m.Role !== "Leader" && m.State === "streaming").length === replicas;
  }

  /**
   * Whether a member's PostgreSQL takes writes right now, asked over its own socket: false also when
   * PostgreSQL refuses the connection (stopped, starting, shutting down: it takes no write either);
   * undefined when the container could not be asked (killed, exec timed out).
   */
  async writable(m: string): Promise<boolean | undefined> {
    const r = await this.s.d
      .exec(this.s.name(m), ["psql", "-X", "-At", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "postgres", "-c", "SELECT NOT pg_is_in_recovery()"], { user: "postgres", timeoutMs: 3000 })
      .catch(() => undefined);
    if (!r) return undefined;
    if (r.code === 0) return r.stdout.trim() === "t";
    return /could not connect|No such file or directory|shutting down|starting up|not yet accepting|Connection refused/i.test(r.stderr) ? false : undefined;
  }

  /**
   * Samples every member's writability every ~300 ms until stopped: [time, writable members, members
   * that did not answer]. A member that did not answer is neither counted writable nor read-only.
   */
  sampleWritable(): { samples: Sample[]; stop: () => Promise<Sample[]> } {
    const samples: Sample[] = [];
    let stopped = false;
    const done = (async () => {
      while (!stopped) {
        const at = Date.now();
        const w = await Promise.all(this.members.map(async (m) => [m, await this.writable(m)] as const));
        samples.push([at, w.filter(([, x]) => x === true).map(([m]) => m), w.filter(([, x]) => x === undefined).map(([m]) => m)]);
        await sleep(300);
      }
    })();
    return {
      samples,
      stop: async () => {
        stopped = true;
        await done;
        return samples;
      },
    };
  }
}

/** What the application saw from `from` on: each distinct error once, with the seconds since `from` it first came. */
export function errorsSeen(w: AckedWriter, from: number): string {
  const seen = new Map<string, number>();
  for (const [at, m] of w.errorLog) if (at >= from && !seen.has(m)) seen.set(m, at);
  return [...seen].map(([m, at]) => `+${((at - from) / 1000).toFixed(1)} s ${m}`).join("; ") || "none";
}

/** Acknowledged ids missing from `table`, read through `url` (DATABASE_URL). */
export async function missingIds(url: string, table: string, acked: number[]): Promise<number[]> {
  const rows = await appQuery(url, `SELECT id FROM ${table}`);
  const present = new Set(rows.map((r) => Number(r.id)));
  return acked.filter((id) => !present.has(id));
}

/** The longest pause between two acknowledged commits from the last one before `from` on (ms): the write gap. */
export function writeGap(w: AckedWriter, from: number): number {
  const firstAfter = w.ackTimes.findIndex((t) => t >= from);
  const start = firstAfter <= 0 ? 0 : firstAfter - 1;
  let gap = 0;
  for (let i = start + 1; i < w.ackTimes.length; i++) gap = Math.max(gap, w.ackTimes[i] - w.ackTimes[i - 1]);
  return gap;
}
