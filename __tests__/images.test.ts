/**
 * The images' programs as files (images/<image>/): shellcheck clean, every program shipped by its
 * Dockerfile, the layout they hard-code equal to the one the constructs render for, and the build
 * context content-addressed. The runtime suites build these images and run them on a Docker engine.
 */
import { spawnSync } from "child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { contextFiles, contextHash, imageContextDir, ImageName } from "../constructs/image-context";
import { CONTAINER_PATHS as P, PROGRAMS, STANZA } from "../postgres-config/paths";
import { ROLE_NAMES } from "../postgres-config/roles";
import { SEAWEEDFS_PATHS } from "../postgres-config/seaweedfs";

const IMAGES: ImageName[] = ["postgres", "backup", "pgbouncer", "monitoring", "seaweedfs"];
const files = (image: ImageName) => readdirSync(imageContextDir(image)).filter((f) => f !== "__pycache__");
const text = (image: ImageName, f: string) => readFileSync(join(imageContextDir(image), f), "utf8");
const hasShellcheck = spawnSync("shellcheck", ["--version"]).status === 0;

(hasShellcheck || process.env.CI === "true" ? describe : describe.skip)("shellcheck", () => {
  test.each(IMAGES.flatMap((i) => files(i).filter((f) => f.endsWith(".sh")).map((f) => [`${i}/${f}`, i, f] as const)))("%s is clean", (_n, image, f) => {
    const r = spawnSync("shellcheck", ["--shell=sh", "--external-sources", "--source-path=SCRIPTDIR", "--severity=style", f], { cwd: imageContextDir(image), encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
if (!hasShellcheck) console.warn(`\nSHELLCHECK TESTS ${process.env.CI === "true" ? "FAIL" : "SKIPPED"}: apt-get install shellcheck\n`);

describe.each(IMAGES)("images/%s", (image) => {
  const dockerfile = text(image, "Dockerfile");
  test("its Dockerfile ships every program of the folder, from Debian trixie or the pinned SeaweedFS", () => {
    const copied = [...dockerfile.matchAll(/^COPY ((?:[^\n\\]|\\\n)+)/gm)].flatMap((m) => m[1].replace(/\\\n/g, " ").trim().split(/\s+/).slice(0, -1));
    expect(files(image).filter((f) => f !== "Dockerfile").sort()).toEqual([...copied].sort());
    expect(dockerfile).toMatch(image === "seaweedfs" ? /^FROM \$\{SEAWEEDFS_IMAGE\}$/m : image === "backup" ? /^FROM \$\{BASE_IMAGE\}$/m : /^FROM debian:trixie-slim$/m);
  });
  test("programs start with a shebang and are sh or python3 (libraries, mode 0644, are imported or sourced)", () => {
    const libraries = [...text(image, "Dockerfile").matchAll(/chmod 0644 ([^;]+);/g)].flatMap((m) => m[1].trim().split(/\s+/));
    for (const f of files(image).filter((x) => /\.(sh|py)$/.test(x) && !libraries.includes(x))) {
      expect([f, text(image, f).split("\n")[0]]).toEqual([f, f.endsWith(".py") ? "#!/usr/bin/python3" : "#!/bin/sh"]);
    }
  });
});

describe("the layout the programs hard-code is the one the stack renders for", () => {
  const lib = Object.fromEntries([...text("postgres", "lib.sh").matchAll(/^([A-Z_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
  test.each([
    ["PGHARBOR_LIB", P.scriptsDir],
    ["PGHARBOR_SECRETS", P.secretsDir],
    ["PGHARBOR_STATUS", P.statusDir],
    ["PGHARBOR_SCRATCH", P.restoreScratchDir],
    ["PG_SOCKET_DIR", P.socketDir],
    ["PGBACKREST_CONF", P.pgbackrestConf],
    ["PGHARBOR_STANZA", STANZA],
    ["TLS_KEY_UPLOAD", P.tlsKeyUpload],
    ["TLS_KEY", P.tlsKey],
  ])("lib.sh %s = %s", (name, value) => expect(lib[name]).toBe(value));
  test("the data directory default", () => expect(text("postgres", "lib.sh")).toContain(`: "\${PGDATA:=${P.dataDir}}"`));
  test("every program the constructs start exists in its image", () => {
    const where: Record<string, ImageName> = { pgbouncerEntrypoint: "pgbouncer", pgbouncerHealthcheck: "pgbouncer", rpoProbe: "monitoring", httpCheck: "monitoring", backupEntrypoint: "backup", backupJob: "backup", restore: "backup", reconcileRoles: "backup" };
    for (const [k, path] of Object.entries(PROGRAMS)) {
      const image = where[k] ?? "postgres";
      expect([k, files(image)]).toEqual([k, expect.arrayContaining([path.slice(P.scriptsDir.length + 1)])]);
    }
    expect(P.opsTool).toBe(`${P.scriptsDir}/pgharbor-ops`);
    expect(text("backup", "Dockerfile")).toContain("ln -s pgharbor_ops.py pgharbor-ops");
  });
  test("role names and files the programs use", () => {
    expect(text("postgres", "replica-bootstrap.sh")).toContain(`REPLICATION_USER=${ROLE_NAMES.replication}`);
    expect(text("postgres", "replica-bootstrap.sh")).toContain(`sslrootcert=${P.tlsCa}`);
    expect(text("backup", "reconcile-roles.sh")).toContain(P.rolesSql);
    const bouncer = text("pgbouncer", "entrypoint.sh");
    for (const s of [ROLE_NAMES.pooler, ROLE_NAMES.monitor, P.pgbouncerTlsKeyUpload, P.pgbouncerIni, P.pgbouncerRunDir]) expect(bouncer).toContain(s);
    expect(text("pgbouncer", "healthcheck.sh")).toContain(`user=${ROLE_NAMES.monitor}`);
    expect(text("pgbouncer", "healthcheck.sh")).toContain(`sslrootcert=${P.pgbouncerTlsCa}`);
    for (const s of [SEAWEEDFS_PATHS.certFile, SEAWEEDFS_PATHS.keyFile, `-dir=${SEAWEEDFS_PATHS.dataDir}`]) expect(text("seaweedfs", "s3-entrypoint.sh")).toContain(s);
  });
});

describe("content-addressed build contexts", () => {
  const copy = (image: ImageName) => {
    const dir = join(mkdtempSync(join(tmpdir(), "pgharbor-ctx-")), image);
    cpSync(imageContextDir(image), dir, { recursive: true });
    return dir;
  };
  test("a copied program's bytes, the Dockerfile and the build arguments change the tag", () => {
    const dir = copy("backup");
    const base = contextHash(dir, { BASE_IMAGE: "pgharbor/postgres:17-x" });
    expect(contextHash(dir, { BASE_IMAGE: "pgharbor/postgres:17-x" })).toBe(base);
    expect(contextHash(dir, { BASE_IMAGE: "pgharbor/postgres:17-y" })).not.toBe(base);
    writeFileSync(join(dir, "heartbeat.sh"), `${readFileSync(join(dir, "heartbeat.sh"), "utf8")}# changed\n`);
    expect(contextHash(dir, { BASE_IMAGE: "pgharbor/postgres:17-x" })).not.toBe(base);
  });
  test("nothing else of the folder does: stray files, Python caches, file modes (the Dockerfile sets every mode)", () => {
    const dir = copy("postgres");
    const base = contextHash(dir, { PG_MAJOR: "17" });
    writeFileSync(join(dir, "restore.sh~"), "an editor's backup");
    writeFileSync(join(dir, ".DS_Store"), "x");
    mkdirSync(join(dir, "__pycache__"));
    writeFileSync(join(dir, "__pycache__", "x.cpython-313.pyc"), "x");
    chmodSync(join(dir, "lib.sh"), 0o755);
    expect(contextHash(dir, { PG_MAJOR: "17" })).toBe(base);
  });
  test("a change to the backup tooling leaves the server image, and with it the primary and replicas, alone", () => {
    // The server's tag covers only the files its Dockerfile copies: none of the backup image's programs.
    const backupPrograms = contextFiles(imageContextDir("backup")).filter((f) => f !== "Dockerfile");
    expect(backupPrograms).toEqual(expect.arrayContaining(["pgharbor_ops.py", "backup-entrypoint.sh", "restore.sh"]));
    expect(contextFiles(imageContextDir("postgres")).filter((f) => backupPrograms.includes(f))).toEqual([]);
    // ...while a change to one of them does change the backup image's tag.
    const dir = copy("backup");
    const before = contextHash(dir, { BASE_IMAGE: "pgharbor/postgres:17-x" });
    writeFileSync(join(dir, "pgharbor_ops.py"), `${readFileSync(join(dir, "pgharbor_ops.py"), "utf8")}# changed\n`);
    expect(contextHash(dir, { BASE_IMAGE: "pgharbor/postgres:17-x" })).not.toBe(before);
  });
  test("a COPY of anything but plain file names is refused (the tag must cover what the image holds)", () => {
    const dir = copy("pgbouncer");
    writeFileSync(join(dir, "Dockerfile"), "FROM debian:trixie-slim\nCOPY . /usr/local/lib/pgharbor/\n");
    expect(() => contextHash(dir)).toThrow(/copy plain files by name only/);
  });
});
