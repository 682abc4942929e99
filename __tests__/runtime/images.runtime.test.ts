/**
 * The images pgharbor deploys, built from the synthesised build contexts exactly as the stack suites
 * build them: the versions they ship (the README lists them; this test reads that table), the
 * programs' unit tests run inside them with the deployed Python and libraries, and the generated
 * Prometheus configuration and alert rules checked by the deployed promtool.
 */
import { spawnSync } from "child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { Deployment } from "./applier";
import { describeEngine, ensureBaseImage } from "./engine";
import { S3_STANDIN } from "./scenario";
import { buildApp } from "../../stacks/app";
import { ENVIRONMENTS } from "../../stacks/environments";
import { buildStack } from "../helpers";
import { alertRules, renderAlertRules, renderAlertTests } from "../../monitoring-config/alerts";
import { renderPrometheusConfig } from "../../monitoring-config/prometheus";
import { catalogueMatchesServer } from "./postgres17/catalogue";
import { noPasswordInServerLog } from "./postgres17/password-logging";
import { dockerPostgres17Engine } from "./postgres17/docker-engine";
import { parseShowConfig } from "../../review/catalogue/generate-pgbouncer";
import { PGBOUNCER_SETTINGS, PGBOUNCER_VERSION } from "../../review/catalogue/pgbouncer";

jest.setTimeout(900_000);

const ROOT = join(__dirname, "..", "..");

/** A temporary directory the images' users (prometheus, postgres) can read when it is bind-mounted. */
function sharedDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "pgharbor-rules-"));
  chmodSync(dir, 0o755);
  return dir;
}

/** `docker run --rm` of an image; stdout+stderr and the exit code. */
function dockerRun(args: string[], timeoutMs = 600_000): { code: number; out: string } {
  const r = spawnSync("docker", ["run", "--rm", ...args], { encoding: "utf8", timeout: timeoutMs });
  return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** The README's table of what each image ships: image → package → version. */
export function readmeVersions(): Record<string, Record<string, string>> {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = /^### Versions\n([\s\S]*?)\n(?=#{2,3} )/m.exec(readme);
  if (!section) throw new Error('README.md has no "### Versions" section');
  const out: Record<string, Record<string, string>> = {};
  for (const m of section[1].matchAll(/^\| `pgharbor\/(\w+)` \| `([^`]+)` \| `([^`]+)` \|/gm)) (out[m[1]] ??= {})[m[2]] = m[3];
  return out;
}

/**
 * A Debian package version without epoch, Debian revision or repack suffix (1:0.10.2-2 → 0.10.2,
 * 17.11-0+deb13u1 → 17.11, 2.53.3+ds1-2 → 2.53.3): what the README promises. The images follow
 * Debian trixie as its mirror serves it, so a Debian-only rebuild keeps the promise; a new upstream
 * release (a trixie point release) fails here until the README says so.
 */
export function upstreamVersion(v: string): string {
  return v.replace(/^\d+:/, "").replace(/-[^-]*$/, "").replace(/\+(ds|dfsg)\d*$/, "");
}

describeEngine("runtime: the images pgharbor deploys", () => {
  let images: Record<string, string> = {};
  let outdir = "";
  const tag = (image: string) => {
    const name = Object.keys(images).find((n) => n.startsWith(`pgharbor/${image}:`));
    if (!name) throw new Error(`no pgharbor/${image} image in the stack (have ${Object.keys(images).join(", ")})`);
    return name;
  };

  beforeAll(async () => {
    await ensureBaseImage();
    outdir = mkdtempSync(join(tmpdir(), "pgharbor-images-"));
    buildApp({ outdir, environments: [ENVIRONMENTS[0]] }).synth();
    images = await Deployment.buildImages({ stackDir: join(outdir, "stacks", ENVIRONMENTS[0].name), standIns: [S3_STANDIN] });
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  test("upstream versions from Debian package versions", () => {
    expect(["1:0.10.2-2", "17.11-0+deb13u1", "2.53.3+ds1-2", "3.0pl1-197", "1.2.1-1+b5", "0.21.1+ds1-1"].map(upstreamVersion)).toEqual(["0.10.2", "17.11", "2.53.3", "3.0pl1", "1.2.1", "0.21.1"]);
  });

  test("every image ships exactly the versions the README lists", () => {
    const listed = readmeVersions();
    expect(Object.keys(listed).sort()).toEqual(["backup", "monitoring", "pgbouncer", "postgres"]);
    for (const [image, packages] of Object.entries(listed)) {
      const r = dockerRun(["--entrypoint", "dpkg-query", tag(image), "-W", "-f", "${Package}\\t${Version}\\n", ...Object.keys(packages)]);
      expect([image, r.code]).toEqual([image, 0]);
      const shipped = Object.fromEntries(r.out.trim().split("\n").map((l) => l.split("\t")).map(([p, v]) => [p, upstreamVersion(v)]));
      expect([image, shipped]).toEqual([image, packages]);
    }
  });

  test.each(["test_pgharbor_ops.py", "test_insights.py", "test_health.py"])("pgharbor-ops' unit tests (%s) pass inside the backup image, as postgres (nothing skipped)", (file) => {
    const r = dockerRun(["--user", "postgres", "-e", "PYTHONDONTWRITEBYTECODE=1", "-v", `${ROOT}/images:/repo/images:ro`, "-v", `${ROOT}/__tests__/python:/repo/__tests__/python:ro`, "--entrypoint", "python3", tag("backup"), "-m", "unittest", "discover", "-s", "/repo/__tests__/python", "-p", file, "-v"]);
    expect(r.out).toMatch(/^Ran \d+ tests in [\d.]+s\n\nOK\n?$/m);
    expect(r.out).not.toMatch(/\.\.\. skipped|skipped=\d+/);
    expect(r.code).toBe(0);
  });

  test("the RPO probe's unit tests pass inside the monitoring image (nothing skipped)", () => {
    const r = dockerRun(["-e", "PYTHONDONTWRITEBYTECODE=1", "-v", `${ROOT}/images:/repo/images:ro`, "-v", `${ROOT}/__tests__/python:/repo/__tests__/python:ro`, "--entrypoint", "python3", tag("monitoring"), "-m", "unittest", "discover", "-s", "/repo/__tests__/python", "-p", "test_rpo_probe.py", "-v"]);
    expect(r.out).toMatch(/^Ran \d+ tests in [\d.]+s\n\nOK\n?$/m);
    expect(r.out).not.toMatch(/\.\.\. skipped|skipped=\d+/);
    expect(r.code).toBe(0);
  });

  test.each(ENVIRONMENTS.map((e) => [e.name, e] as const))("%s: the deployed promtool accepts prometheus.yml and the rules; every rule fires on its bad case and stays quiet on its good one", (_n, env) => {
    const { stack } = buildStack(env);
    const dir = sharedDir();
    try {
      writeFileSync(join(dir, "alerts.yml"), renderAlertRules(stack.monitoring.alertInput));
      writeFileSync(join(dir, "tests.yml"), renderAlertTests(stack.monitoring.alertInput, "alerts.yml"));
      writeFileSync(join(dir, "prometheus.yml"), renderPrometheusConfig(env.name, stack.monitoring.scrapeTargets, "/etc/pgharbor/monitoring/alerts.yml"));
      const promtool = (...args: string[]) => dockerRun(["-v", `${dir}:/etc/pgharbor/monitoring:ro`, "-w", "/etc/pgharbor/monitoring", "--entrypoint", "promtool", tag("monitoring"), ...args]);
      const config = promtool("check", "config", "prometheus.yml");
      expect(config).toEqual({ code: 0, out: expect.stringContaining("SUCCESS: prometheus.yml is valid prometheus config file syntax") });
      expect(promtool("check", "rules", "alerts.yml")).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${alertRules(stack.monitoring.alertInput).length} rules found`) });
      expect(promtool("test", "rules", "tests.yml")).toEqual({ code: 0, out: expect.stringContaining("SUCCESS") });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // The primary's entrypoint on an empty data volume, against a local pgBackRest repository in each
  // state `pgbackrest info` reports with exit code 0: only an archive that has never seen the stanza
  // lets it initialise a new cluster.
  test.each([
    ["no stanza: a new cluster is initialised", "", /initialising a new cluster/],
    ["a stanza without a backup: refused, with the way out", "install -d -o postgres /r/backup/pgharbor /r/archive/pgharbor;", /holds a stanza for this environment without a backup \(pgBackRest status 3\).*stanza-delete/],
    ["an archive it cannot read: it waits and says why", "install -d -m 0700 /r/backup/pgharbor /r/archive/pgharbor; chmod 0700 /r;", /waiting for the archive \(attempt 2 of 30\) before initialising: pgBackRest said: .*Permission denied/],
  ])("the primary on an empty volume, %s", (_name, setup, expected) => {
    const dir = sharedDir();
    try {
      writeFileSync(join(dir, "pgbackrest.conf"), "[global]\nrepo1-path=/r\n[pgharbor]\npg1-path=/var/lib/postgresql/data\n");
      const key = spawnSync("openssl", ["genpkey", "-algorithm", "ed25519", "-out", join(dir, "server.key")]);
      expect(key.status).toBe(0);
      chmodSync(join(dir, "server.key"), 0o644);
      const r = dockerRun(["-v", `${dir}/pgbackrest.conf:/etc/pgbackrest/pgbackrest.conf:ro`, "-v", `${dir}/server.key:/etc/postgresql/tls/server.key:ro`, "--entrypoint", "sh", tag("postgres"), "-c",
        `install -d -o postgres /r; ${setup} timeout 7 /usr/local/lib/pgharbor/primary-entrypoint.sh -c listen_addresses= ; echo "data directory: $(ls -A /var/lib/postgresql/data | head -n 1)."`], 60_000);
      expect(r.out).toMatch(expected);
      const initialised = /initialising a new cluster/.test(r.out);
      expect(r.out).toMatch(initialised ? /^data directory: PG_VERSION\.$/m : /^data directory: \.$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("restore.sh, run by docker exec with the container's whole environment, gives pgBackRest the writer's bucket key, never the deleting one", () => {
    const fake = "#!/bin/sh\nenv | grep -E '_S3_KEY(_SECRET)?=' | sort\n";
    const r = dockerRun(["-e", "PGHARBOR_EXPIRER_S3_KEY=expirer-key", "-e", "PGHARBOR_EXPIRER_S3_KEY_SECRET=expirer-secret", "-e", "PGBACKREST_REPO1_S3_KEY=writer-key", "--entrypoint", "sh", tag("backup"), "-c",
      `mkdir /fake && printf '%s' "$0" > /fake/pgbackrest && chmod 0755 /fake/pgbackrest && install -d -o postgres -m 0750 /var/lib/pgharbor/scratch && PATH=/fake:$PATH /usr/local/lib/pgharbor/restore.sh --into /var/lib/pgharbor/scratch/t`, fake], 60_000);
    expect(r).toEqual({ code: 0, out: expect.stringContaining("restore complete") });
    expect(r.out).toContain("PGBACKREST_REPO1_S3_KEY=writer-key");
    expect(r.out).not.toMatch(/expirer-(key|secret)/);
  });

  test("the PostgreSQL 17 parameter catalogue and keyword list equal the deployed server's pg_settings and pg_get_keywords()", async () => {
    const r = await catalogueMatchesServer(dockerPostgres17Engine(tag("postgres")));
    expect(r.differences).toEqual([]);
    expect(r.configComplaints).toEqual([]);
  });

  test("no password reaches the server log, reconciliation's output or pg_stat_statements, on any path (PostgreSQL 17)", async () => {
    const r = await noPasswordInServerLog(dockerPostgres17Engine(tag("postgres")));
    expect(r.leaks).toEqual([]);
    expect(r.observed).toEqual({ firstReconciliation: 0, refusedReconciliation: 3, clientErrors: 3, lockWaitLogged: true, ddlAudited: true, pgStatStatementsRows: expect.any(Number) });
    expect(r.observed.pgStatStatementsRows).toBeGreaterThan(0);
  });

  test("negative control: the old logging settings leak in the same scenario (so the one above can fail)", async () => {
    const r = await noPasswordInServerLog(dockerPostgres17Engine(tag("postgres")), { log_statement: "ddl", log_min_error_statement: "error", "pg_stat_statements.track_utility": "on" });
    expect(r.leaks.length).toBeGreaterThan(0);
  });

  test("the PgBouncer settings catalogue `pgharbor review` classifies with equals SHOW CONFIG of the deployed PgBouncer", () => {
    // A throwaway PgBouncer on a socket, trust for its own admin user: only to read its SHOW CONFIG.
    const script = [
      "printf '[databases]\\n[pgbouncer]\\nlisten_addr =\\nunix_socket_dir = /tmp\\nauth_type = trust\\nauth_file = /tmp/users.txt\\nadmin_users = postgres\\npidfile = /tmp/pgbouncer.pid\\n' > /tmp/pgbouncer.ini",
      "printf '\"postgres\" \"\"\\n' > /tmp/users.txt",
      "chown postgres /tmp/pgbouncer.ini /tmp/users.txt",
      "gosu postgres pgbouncer -d /tmp/pgbouncer.ini",
      "for i in 1 2 3 4 5 6 7 8 9 10; do [ -S /tmp/.s.PGSQL.6432 ] && break; sleep 0.5; done",
      "gosu postgres psql -X -h /tmp -p 6432 -U postgres -At -F \"$(printf '\\t')\" pgbouncer -c 'SHOW VERSION' -c 'SHOW CONFIG'",
    ].join(" && ");
    const r = dockerRun(["--entrypoint", "sh", tag("pgbouncer"), "-c", script]);
    expect(r.code).toBe(0);
    const shown = parseShowConfig(r.out);
    expect(shown.version).toBe(PGBOUNCER_VERSION);
    expect(shown.rows).toEqual([...PGBOUNCER_SETTINGS]);
  });

  test("the deployed promtool refuses a configuration with a job name twice (the defect the renderer had)", () => {
    const dir = sharedDir();
    try {
      writeFileSync(join(dir, "prometheus.yml"), "scrape_configs:\n  - job_name: postgres\n    static_configs: [{targets: [a:1]}]\n  - job_name: postgres\n    static_configs: [{targets: [b:1]}]\n");
      const r = dockerRun(["-v", `${dir}:/cfg:ro`, "--entrypoint", "promtool", tag("monitoring"), "check", "config", "/cfg/prometheus.yml"]);
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/found multiple scrape configs with job name "postgres"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
