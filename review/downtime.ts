/**
 * Which containers restart, why, and what it means for the clients.
 *
 * Interruption estimates are rough upper bounds from the stack's own numbers, not measurements:
 * - PostgreSQL: Docker sends SIGINT (fast shutdown: sessions end, a final checkpoint writes what is
 *   dirty in shared_buffers), the provider waits up to destroy_grace_seconds, then the new container
 *   starts. Bound: 5 s of start-up plus shared_buffers written at 200 MiB/s.
 * - PgBouncer 1.24 answers SIGTERM (Docker's default signal) with SHUTDOWN WAIT_FOR_CLIENTS (pgbouncer(1),
 *   "Signals"): it stops accepting connections and waits for every client to leave, which pooled
 *   applications never do, until the provider kills it after destroy_grace_seconds. SIGINT (safe
 *   shutdown, WAIT_FOR_SERVERS) only waits for transactions in flight.
 */
import { memoryValueToMiB } from "../postgres-config/postgresql-conf";
import { ContainerView, parsePostgresqlConf, PATHS } from "./files";
import { Plan, shortPath } from "./terraform";
import { AttributeChange, ContainerImpact, SettingChange } from "./types";

/** Files the server re-reads on a reload (SIGHUP): postgresql.conf, pg_hba.conf, pg_ident.conf; PgBouncer's RELOAD. */
const RELOADABLE_FILES = new Set<string>([PATHS.postgresqlConf, PATHS.hbaConf, PATHS.identConf, PATHS.pgbouncerIni]);

/** What regenerating the resource at `address` means, for a reason line. */
export function regeneratedWhat(address: string, plan: Plan): string {
  const type = address.replace(/^data\./, "").split(".")[0];
  const short = shortPath(plan.head.get(address) ?? plan.base.get(address), address);
  switch (type) {
    case "tls_locally_signed_cert":
      return `certificate reissued (${short})`;
    case "tls_self_signed_cert":
      return `new CA certificate (${short})`;
    case "tls_private_key":
      return `new private key (${short})`;
    case "tls_cert_request":
      return `new certificate request (${short})`;
    case "random_password":
      return `secret regenerated (${short})`;
    case "aws_iam_access_key":
      return `new access key (${short})`;
    case "docker_image":
      return "image rebuilt";
    default:
      return `${short} recreated`;
  }
}

const imageName = (plan: Plan, address: string, side: "base" | "head") => String(plan[side].get(address)?.config.name ?? "?");

/** One reason line per attribute change of a container. */
function reasonLines(address: string, changes: AttributeChange[], plan: Plan, settings: SettingChange[], replaced: boolean): string[] {
  const out: string[] = [];
  const imageOf = (ref: unknown, side: "base" | "head") => {
    const target = /\$\{(docker_image\.[^.}]+)\./.exec(String(ref))?.[1];
    return target ? imageName(plan, target, side) : String(ref);
  };
  const literalImage = changes.some((c) => c.attribute === "image" && !c.via);
  for (const c of changes) {
    if (c.attribute === "image" && c.via?.startsWith("docker_image.")) {
      if (!literalImage) out.push(`image rebuilt: ${imageName(plan, c.via, "base")} → ${imageName(plan, c.via, "head")}`);
    } else if (c.attribute === "image" && !c.via) {
      const [b, h] = [plan.base.get(address)?.config.image, plan.head.get(address)?.config.image];
      out.push(`image ${imageOf(b, "base")} → ${imageOf(h, "head")}`);
    } else if (c.via) {
      const what = c.attribute.replace(/^upload:(.*\/)?/, "").replace(/^env:/, "env ");
      out.push(`${what}: ${regeneratedWhat(c.via, plan)}`);
    } else if (c.attribute === `upload:${PATHS.postgresqlConf}` || c.attribute === `upload:${PATHS.pgbouncerIni}`) {
      const names = settings.filter((s) => s.server === (c.attribute.endsWith("pgbouncer.ini") ? "pgbouncer" : "postgresql")).map((s) => s.name);
      out.push(`${c.detail}${names.length ? ` (${names.slice(0, 5).join(", ")}${names.length > 5 ? `, +${names.length - 5}` : ""})` : ""}`);
    } else if (c.attribute === "memory") {
      const [o, n] = [Number(plan.base.get(address)?.config.memory), Number(plan.head.get(address)?.config.memory)];
      // Docker gives a container without memory_swap a memory+swap limit of twice its memory, and
      // `docker update` (all the provider sends) refuses a memory limit above it.
      const tooHigh = !replaced && o > 0 && n > 2 * o && plan.head.get(address)?.config.memory_swap === undefined;
      out.push(
        `${c.detail.replace(/^memory/, "memory limit")} MiB${replaced ? "" : " (docker update, no restart)"}${tooHigh ? `: Docker will refuse it ("Memory limit should be smaller than already set memoryswap limit", the container's being ${2 * o} MiB) and the apply fails; replace the container instead (terraform apply -replace=${address})` : ""}`,
      );
    } else if (c.attribute === "shm_size") {
      out.push(`${c.detail} MiB`);
    } else if (c.effect === "state-only" && !replaced) {
      out.push(`${c.detail}: recorded in Terraform's state only, the running container keeps the old value until it is next replaced (kreuzwerker/docker 3.6.2 never updates it)`);
    } else out.push(c.detail);
  }
  // What matters first: the image, files whose content changes, regenerated secrets, env; then the rest.
  const rank = (l: string) => (/^image /.test(l) ? 0 : /^(\/\S+|\S+\.\w+) changed( \(|$)|: (certificate reissued|new CA|new private key|secret regenerated|new access key)/.test(l) ? 1 : /^env |^[A-Z][A-Z0-9_]+ /.test(l) ? 2 : 3);
  return [...new Set(out)].map((l, i) => [l, i] as const).sort(([a, i], [b, j]) => rank(a) - rank(b) || i - j).map(([l]) => l);
}

function sharedBuffersMiB(view: ContainerView | undefined): number | undefined {
  const conf = view?.files.get(PATHS.postgresqlConf);
  const sb = conf === undefined ? undefined : parsePostgresqlConf(conf).params.get("shared_buffers")?.[1];
  return sb === undefined ? undefined : memoryValueToMiB(sb);
}

const grace = (v: ContainerView | undefined, fallback: number) => Number(v?.config.destroy_grace_seconds ?? fallback);

/** What a restart of `view` means, and a bound of the interruption, seconds. */
function restartMeaning(before: ContainerView, after: ContainerView | undefined, others: { replicasLeft: string[]; afterPrimary: boolean; replicasStaying: number }): { means: string; seconds?: number } {
  const g = grace(before, 0);
  switch (before.role) {
    case "primary": {
      const sb = sharedBuffersMiB(after) ?? sharedBuffersMiB(before) ?? 128;
      if (g === 0) {
        return { seconds: 5, means: `the primary restarts: Docker kills it at once (no destroy_grace_seconds), without a shutdown checkpoint, so start-up replays the WAL since the last checkpoint (crash recovery) before writes resume; ${others.replicasStaying ? "replicas reconnect by themselves" : "no replica serves reads meanwhile"}` };
      }
      const seconds = 5 + Math.ceil(sb / 200);
      return {
        seconds,
        means: `the primary restarts: writes stop for up to about ${seconds} s (fast shutdown with a final checkpoint of at most ${sb} MiB of shared_buffers, then start-up); ${others.replicasStaying ? "replicas reconnect by themselves" : "no replica serves reads meanwhile"}; transactions in flight through PgBouncer fail and clients retry; past destroy_grace_seconds ${g} s Docker kills it and start-up replays WAL instead`,
      };
    }
    case "replica": {
      const sb = sharedBuffersMiB(after) ?? sharedBuffersMiB(before) ?? 128;
      const seconds = 5 + Math.ceil(sb / 200);
      const where = others.replicasLeft.length
        ? `reads move to ${others.replicasLeft.join(", ")} (PgBouncer's read-only pool tries the next host)`
        : "read-only clients (DATABASE_READ_URL) get errors: no other replica serves the read-only pool meanwhile";
      const span = others.afterPrimary ? "; it depends on the primary, which is replaced too: Terraform stops it first and starts it after the primary, so it is down for the primary's restart as well" : "";
      return { seconds, means: `${before.short} restarts for up to about ${seconds} s: ${where}; its slot keeps the WAL it has not replayed${span}` };
    }
    case "pgbouncer": {
      const signal = String(before.config.stop_signal ?? "SIGTERM");
      if (g === 0) return { seconds: 5, means: "PgBouncer restarts: Docker kills it at once (no destroy_grace_seconds): every client connection drops and must reconnect, transactions in flight fail" };
      if (signal === "SIGINT") {
        return { seconds: 5, means: "PgBouncer restarts: transactions in flight finish (safe shutdown), then every client connection is closed and must reconnect" };
      }
      const span = others.afterPrimary ? " It depends on the primary, which is replaced too: Terraform stops PgBouncer first and starts it after the primary." : "";
      return {
        seconds: g + 5,
        means: `PgBouncer restarts: every client connection drops and must reconnect. On Docker's ${signal} PgBouncer 1.24 waits for clients to leave (SHUTDOWN WAIT_FOR_CLIENTS) and accepts no new connection meanwhile, until Docker kills it after destroy_grace_seconds ${g} s: new connections fail for up to about ${g + 5} s.${span}`,
      };
    }
    case "backup":
      return { means: "no database downtime; a backup, expiry, logical dump or drill running at that moment is killed and recorded as failed; on start the container reconciles roles and passwords" };
    case "s3":
      return { means: "the dev archive is unreachable for a few seconds: WAL waits in pg_wal (asynchronous archive-push) and catches up" };
    case "monitoring":
      return { means: before.short === "prometheus" ? "Prometheus restarts: a gap of about 30 s in scraping and alerting; its TSDB volume stays" : `${before.short} restarts: a gap of about 30 s in its metrics` };
    default:
      return { means: `${before.short} restarts` };
  }
}

function createMeaning(v: ContainerView): string {
  switch (v.role) {
    case "replica":
      return `a new replica: it restores from the bucket (or takes a pg_basebackup through its new slot) before it serves reads`;
    case "primary":
      return "a new primary: initdb on an empty data volume";
    default:
      return `new container ${v.short}`;
  }
}

function deleteMeaning(v: ContainerView): string {
  switch (v.role) {
    case "replica": {
      const slot = `pgharbor_${v.short.replace(/[^a-z0-9_]/g, "_")}`;
      return `${v.short} stops for good. Its slot ${slot} stays on the primary and holds WAL up to max_slot_wal_keep_size: drop it there (SELECT pg_drop_replication_slot('${slot}')) once the replica is gone`;
    }
    case "primary":
      return "the primary stops for good: every write fails";
    case "pgbouncer":
      return "PgBouncer stops for good: DATABASE_URL and DATABASE_READ_URL stop working";
    default:
      return `${v.short} stops for good`;
  }
}

export function containerImpacts(plan: Plan, base: Map<string, ContainerView>, head: Map<string, ContainerView>, settingsBy: Map<string, SettingChange[]>): ContainerImpact[] {
  const out: ContainerImpact[] = [];
  const stopping = new Set([...plan.changes.values()].filter((c) => c.action === "replace" || c.action === "delete").map((c) => c.address));
  const replicasLeft = (except: string) => [...head.values()].filter((v) => v.role === "replica" && v.address !== except && !stopping.has(v.address) && base.has(v.address)).map((v) => v.short);
  for (const change of plan.changes.values()) {
    const b = base.get(change.address);
    const h = head.get(change.address);
    const view = h ?? b;
    if (!view) continue;
    const settings = settingsBy.get(change.address) ?? [];
    if (change.action === "create") {
      out.push({ container: view.name, address: view.address, role: view.role, action: "create", restarts: false, reasons: ["new"], means: createMeaning(view) });
      continue;
    }
    if (change.action === "delete") {
      out.push({ container: view.name, address: view.address, role: view.role, action: "delete", restarts: true, reasons: ["removed from the stack"], means: deleteMeaning(view) });
      continue;
    }
    const reasons = reasonLines(change.address, change.changes, plan, settings, change.action === "replace");
    if (change.action === "update") {
      const live = change.changes.some((c) => c.effect === "in-place");
      out.push({ container: view.name, address: view.address, role: view.role, action: "update", restarts: false, reasons, means: live ? "no restart: Docker changes it on the running container" : "no restart, and no effect on the running container" });
      continue;
    }
    const primaryReplaced = [...stopping].some((a) => base.get(a)?.role === "primary" && plan.changes.get(a)?.action === "replace");
    const dependsOnPrimary = ((h?.config.depends_on as string[] | undefined) ?? []).some((d) => base.get(d)?.role === "primary");
    const replicasStaying = [...head.values()].filter((v) => v.role === "replica" && base.has(v.address) && !stopping.has(v.address)).length;
    const m = restartMeaning(b!, h, { replicasLeft: replicasLeft(change.address), afterPrimary: primaryReplaced && dependsOnPrimary, replicasStaying });
    const replacing = change.changes.filter((c) => c.effect === "replace");
    const reloadOnly =
      replacing.length > 0 &&
      replacing.every((c) => c.via === undefined && RELOADABLE_FILES.has(c.attribute.replace(/^upload:/, ""))) &&
      settings.every((s) => s.needs === "reload") &&
      (b!.role === "primary" || b!.role === "replica" || b!.role === "pgbouncer");
    out.push({
      container: view.name,
      address: view.address,
      role: view.role,
      action: "replace",
      restarts: true,
      reasons,
      means: m.means,
      interruptionSeconds: m.seconds,
      avoidable: reloadOnly ? `every change here takes a reload (${settings.length ? settings.map((s) => s.name).join(", ") : "pg_hba.conf/pg_ident.conf"}), but the docker provider replaces a container whenever an uploaded file changes` : undefined,
    });
  }
  const rank = { primary: 0, replica: 1, pgbouncer: 2, s3: 3, backup: 4, monitoring: 5, other: 6 };
  const act = { delete: 0, replace: 1, update: 2, create: 3 };
  return out.sort((x, y) => act[x.action] - act[y.action] || rank[x.role] - rank[y.role] || x.container.localeCompare(y.container));
}
