/**
 * Runtime test of the S3 stand-in (`__tests__/runtime/s3-standin/`): the container that takes the
 * dev S3 server's place (SeaweedFS, whose image cannot be pulled here) under the same name, network
 * alias, env, uploads and volume, run in a real Docker engine and exercised by real clients from a
 * second container on the same user-defined network: boto3 1.37 (Debian trixie) with Content-MD5 and
 * with its default flexible checksums (aws-chunked bodies with a CRC32 trailer over HTTPS), raw
 * hand-signed requests for what boto3 will not send, and pgBackRest 2.55.1. The bucket runs as an
 * Object Lock bucket (S3_OBJECT_LOCK=1), so every accepted upload proves its client sent a checksum.
 *
 * Images are built from `debian:trixie-slim` (local; never pulled) with the host's network for
 * Debian's mirror, tagged by the hash of their Dockerfile and reused when that tag exists. Docker is
 * driven through its CLI. Without a Docker engine the suite is skipped with one loud line, except
 * under CI=true where that fails.
 */
import { execFileSync, spawnSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";

const SUITE = "S3 stand-in container";
const STANDIN_DIR = join(__dirname, "s3-standin");
const NODE_MODULES = resolve(__dirname, "..", "..", "node_modules");
const BASE_IMAGE = "debian:trixie-slim";
const S3_PORT = 8333;
const LABEL = "pgharbor-test=s3-standin";
const CLIENT_DOCKERFILE = `# pgharbor test: clients of the S3 stand-in (boto3 from Debian, pgBackRest 2.55)
FROM ${BASE_IMAGE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3-boto3 pgbackrest ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV PYTHONDONTWRITEBYTECODE=1
`;
const OBJECT_LOCK_MESSAGE = "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

function docker(args: string[], opts: RunOptions = {}): Run {
  const started = Date.now();
  const r = spawnSync("docker", args, { input: opts.input, env: opts.env ?? process.env, encoding: "utf8", timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}`, ms: Date.now() - started };
}

/** Runs docker; throws with its stderr when it fails. No secret is ever in `args` (they go by env). */
function dockerOk(args: string[], opts: RunOptions = {}): string {
  const r = docker(args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.slice(0, 2).join(" ")} failed (exit ${r.code}): ${r.stderr.trim().slice(-4000)}`);
  return r.stdout;
}

/** Why the suite cannot run here, or undefined when it can. */
function unavailable(): string | undefined {
  const info = docker(["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 30_000 });
  if (info.code !== 0) return `docker info failed: ${info.stderr.trim().split("\n")[0] || `exit ${info.code}`}`;
  if (docker(["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]).code !== 0) return `the base image ${BASE_IMAGE} is not in the Docker engine (this test never pulls it)`;
  if (spawnSync("openssl", ["version"]).status !== 0) return "openssl is not installed";
  return undefined;
}

/** The image of this Dockerfile, tagged by its hash: built once (host network, no pull), then reused. */
function ensureImage(repository: string, dockerfile: string): { tag: string; built: boolean; ms: number } {
  const tag = `${repository}:${createHash("sha256").update(dockerfile).digest("hex").slice(0, 12)}`;
  const started = Date.now();
  if (docker(["image", "inspect", "--format", "{{.Id}}", tag]).code === 0) return { tag, built: false, ms: Date.now() - started };
  dockerOk(["build", "--network", "host", "--label", LABEL, "-t", tag, "-"], { input: dockerfile, timeoutMs: 20 * 60_000 });
  return { tag, built: true, ms: Date.now() - started };
}

/** A throwaway CA and a server certificate for `name` (SAN DNS), as the environment's CA would issue. */
function makeTls(dir: string, name: string): void {
  const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pgharbor s3-standin test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  openssl(["req", ...ec, "-keyout", "s3.key", "-out", "s3.csr", "-subj", `/CN=${name}`]);
  writeFileSync(
    join(dir, "server.ext"),
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${name}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n`,
  );
  openssl(["x509", "-req", "-in", "s3.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "s3.crt", "-extfile", "server.ext"]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface S3Error {
  status: number;
  code: string;
  message: string;
}

interface RequestSeen {
  op: string;
  "content-md5": boolean;
  "x-amz-content-sha256": string | null;
  "content-encoding": string | null;
  "x-amz-trailer": string | null;
  "checksum-headers": string[];
}

interface RawAnswer {
  status: number;
  code: string | null;
}

interface PgbackrestStep {
  rc: number;
  stderr: string;
  equal?: boolean;
  listing?: Record<string, { type: string; size?: number }> | null;
}

/** The decoder and checksums of the stand-in, loaded as the container loads them (CommonJS). */
interface AwsChunkedModule {
  createAwsChunkedDecoder(): { push(buf: Buffer, emit: (piece: Buffer) => void): void; end(): { decodedLength: number; trailers: Map<string, string> } };
}
interface ChecksumsModule {
  crc32(buf: Buffer, previous?: number): number;
  crc32c(buf: Buffer, previous?: number): number;
  tableCrc32(poly: number): (buf: Buffer, previous?: number) => number;
}

describe("S3 stand-in: aws-chunked decoder and checksums (no Docker)", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createAwsChunkedDecoder } = require("./s3-standin/aws-chunked") as AwsChunkedModule;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { crc32, crc32c, tableCrc32 } = require("./s3-standin/checksums") as ChecksumsModule;
  const encode = (data: Buffer, chunk: number, trailer = "x-amz-checksum-crc32:AAAAAA==") => {
    const parts: Buffer[] = [];
    for (let i = 0; i < data.length; i += chunk) {
      const piece = data.subarray(i, i + chunk);
      parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
    }
    return Buffer.concat([...parts, Buffer.from(`0\r\n${trailer}\r\n\r\n`)]);
  };
  const decode = (encoded: Buffer, slice: (i: number) => number) => {
    const d = createAwsChunkedDecoder();
    const out: Buffer[] = [];
    for (let i = 0, n = 0; i < encoded.length; i += n, n = 0) {
      n = Math.max(1, slice(i));
      d.push(encoded.subarray(i, i + n), (p) => out.push(Buffer.from(p)));
    }
    return { data: Buffer.concat(out), ...d.end() };
  };

  test("CRC32 and CRC32C match their check values; the table CRC32 matches zlib's", () => {
    const nine = Buffer.from("123456789");
    expect(crc32(nine).toString(16)).toBe("cbf43926");
    expect(crc32c(nine).toString(16)).toBe("e3069283");
    const data = randomBytes(100_003);
    expect(tableCrc32(0xedb88320)(data)).toBe(crc32(data));
    expect(crc32(data.subarray(5000), crc32(data.subarray(0, 5000)))).toBe(crc32(data));
    expect(crc32c(data.subarray(7), crc32c(data.subarray(0, 7)))).toBe(crc32c(data));
  });

  test("decodes aws-chunked bodies however they are sliced, keeping the trailer", () => {
    const data = randomBytes(70_001);
    const encoded = encode(data, 8192, "x-amz-checksum-crc32:q83vEg==");
    for (const slice of [() => encoded.length, () => 1, (i: number) => (i % 7) + 1, () => 8194, () => 8195]) {
      const r = decode(encoded, slice);
      expect(r.data.equals(data)).toBe(true);
      expect(r.decodedLength).toBe(data.length);
      expect(r.trailers.get("x-amz-checksum-crc32")).toBe("q83vEg==");
    }
  });

  test("refuses truncated, overlong, signed and trailing-garbage framing", () => {
    const data = randomBytes(1000);
    const encoded = encode(data, 300);
    expect(() => decode(encoded.subarray(0, encoded.length - 2), () => 64)).toThrow(/ended before/);
    expect(() => decode(Buffer.concat([encoded, Buffer.from("x")]), () => 64)).toThrow(/after the trailer/);
    expect(() => decode(Buffer.from("5\r\nabcdefg\r\n0\r\n\r\n"), () => 100)).toThrow(/longer than its declared size/);
    expect(() => decode(Buffer.from("zz\r\n"), () => 100)).toThrow(/bad chunk size/);
    expect(() => decode(Buffer.from(`3;chunk-signature=${"0".repeat(64)}\r\nabc\r\n`), () => 100)).toThrow(/not implemented/);
  });
});

const problem = unavailable();
if (problem) {
  const ci = process.env.CI === "true";
  const line = `RUNTIME SUITE "${SUITE}" ${ci ? "CANNOT RUN (CI=true)" : "SKIPPED"}: ${problem.replace(/[.\s]+$/, "")}. Start the engine (dockerd) and have ${BASE_IMAGE} loaded to run it.`;
  if (ci) {
    describe(SUITE, () =>
      test("a Docker engine is available (CI=true)", () => {
        throw new Error(line);
      }),
    );
  } else {
    console.warn(`\n${"!".repeat(100)}\n${line}\n${"!".repeat(100)}\n`);
    describe.skip(SUITE, () => test("skipped", () => undefined));
  }
} else {
  describe(SUITE, suite);
}

function suite(): void {
  const id = randomBytes(3).toString("hex");
  const envName = `st${id}`;
  const s3Name = `pgharbor-${envName}-s3`;
  const clientName = `pgharbor-${envName}-s3-client`;
  const network = `pgharbor-${envName}-net`;
  const volume = `pgharbor-${envName}-s3-data`;
  const bucket = `pgharbor-${envName}-wal`;
  const run = `run-${id}`;
  const secret = (n: number) => randomBytes(n).toString("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, n);
  const identities: Record<string, string> = {};
  for (const who of ["WRITER", "READER", "EXPIRER"]) {
    identities[`S3_${who}_ACCESS_KEY`] = secret(20).toUpperCase();
    identities[`S3_${who}_SECRET_KEY`] = secret(40);
  }
  const tlsDir = mkdtempSync(join(tmpdir(), "pgharbor-s3-standin-tls-"));
  const workDir = mkdtempSync(join(tmpdir(), "pgharbor-s3-standin-work-"));
  const timings: Record<string, number> = {};
  const images: Record<string, { tag: string; built: boolean }> = {};

  /** The stand-in's output: stdout (ready, accepted requests) and stderr (refusals), as docker keeps them. */
  const standinStreams = () => {
    const r = docker(["logs", s3Name]);
    return { stdout: r.stdout, stderr: r.stderr };
  };
  const standinLog = () => {
    const r = standinStreams();
    return `${r.stdout}${r.stderr}`;
  };
  const clientEnv = (): NodeJS.ProcessEnv => ({
    ...process.env,
    S3_ENDPOINT: `https://${s3Name}:${S3_PORT}`,
    S3_BUCKET: bucket,
    S3_CA: "/work/ca.crt",
    S3_KEY: identities.S3_WRITER_ACCESS_KEY,
    S3_SECRET: identities.S3_WRITER_SECRET_KEY,
    RUN: run,
    S3_PGBACKREST_CONF: "/work/pgbackrest.conf",
  });
  /** Runs a scenario of client.py in the client container and returns its facts. */
  function scenario<T>(name: string, user?: string): T {
    const vars = ["S3_ENDPOINT", "S3_BUCKET", "S3_CA", "S3_KEY", "S3_SECRET", "RUN", "S3_PGBACKREST_CONF"].flatMap((v) => ["-e", v]);
    const r = docker(["exec", ...(user ? ["-u", user] : []), ...vars, clientName, "python3", "/standin/app/client.py", name], { env: clientEnv(), timeoutMs: 180_000 });
    timings[`client ${name}`] = r.ms;
    if (r.code !== 0) throw new Error(`client scenario ${name} failed (exit ${r.code}):\n${r.stderr.slice(-6000)}\n--- stand-in log ---\n${standinLog().slice(-4000)}`);
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "null") as T;
  }
  /** Removes whatever of the run exists (each step tolerates its object being absent). */
  function cleanUp(): void {
    docker(["rm", "-f", "-v", s3Name, clientName]);
    docker(["network", "rm", network]);
    docker(["volume", "rm", "-f", volume]);
    rmSync(tlsDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  }

  beforeAll(async () => {
    const t0 = Date.now();
    const standinDockerfile = readFileSync(join(STANDIN_DIR, "Dockerfile"), "utf8");
    for (const [what, repository, dockerfile] of [
      ["stand-in", "pgharbor-test/s3-standin", standinDockerfile],
      ["client", "pgharbor-test/s3-client", CLIENT_DOCKERFILE],
    ] as const) {
      const image = ensureImage(repository, dockerfile);
      images[what] = image;
      timings[`image ${what} (${image.built ? "built" : "cached"})`] = image.ms;
    }

    makeTls(tlsDir, s3Name);
    // The uploads, as the Docker provider makes them: files written into the created container.
    const upload = join(tlsDir, "upload");
    mkdirSync(join(upload, "etc/pgharbor/tls"), { recursive: true });
    writeFileSync(join(upload, "etc/pgharbor/tls/s3.crt"), readFileSync(join(tlsDir, "s3.crt")), { mode: 0o644 });
    writeFileSync(join(upload, "etc/pgharbor/tls/s3.key"), readFileSync(join(tlsDir, "s3.key")), { mode: 0o600 });
    const tar = execFileSync("tar", ["-C", upload, "--owner=0", "--group=0", "-cf", "-", "etc"]);
    // What the clients read: the CA (no secret) and pgBackRest's configuration. The keys go by env.
    chmodSync(workDir, 0o755);
    writeFileSync(join(workDir, "ca.crt"), readFileSync(join(tlsDir, "ca.crt")), { mode: 0o644 });
    writeFileSync(
      join(workDir, "pgbackrest.conf"),
      [
        "[global]",
        "repo1-type=s3",
        `repo1-s3-bucket=${bucket}`,
        `repo1-s3-endpoint=${s3Name}`,
        `repo1-storage-port=${S3_PORT}`,
        "repo1-s3-uri-style=path",
        "repo1-s3-region=us-east-1",
        "repo1-storage-ca-file=/work/ca.crt",
        "repo1-path=/pgharbor/test",
        "log-level-console=warn",
        "log-level-file=off",
        "lock-path=/tmp/pgbackrest-lock",
        "",
      ].join("\n"),
      { mode: 0o644 },
    );

    const t1 = Date.now();
    dockerOk(["network", "create", "--label", LABEL, network]);
    dockerOk(["volume", "create", "--label", LABEL, volume]);
    dockerOk(
      [
        "create",
        "--name", s3Name,
        "--label", LABEL,
        "--network", network,
        "--network-alias", s3Name,
        ...Object.keys(identities).flatMap((k) => ["-e", k]),
        "-e", `S3_BUCKET=${bucket}`,
        "-e", `S3_PORT=${S3_PORT}`,
        "-e", "S3_OBJECT_LOCK=1",
        "-e", "S3_LOG_ACCEPTED=1",
        "-v", `${volume}:/data`,
        "-v", `${STANDIN_DIR}:/standin/app:ro`,
        "-v", `${NODE_MODULES}:/standin/node_modules:ro`,
        "--memory", "512m",
        "--health-interval", "1s",
        "--health-timeout", "3s",
        "--health-retries", "30",
        images["stand-in"].tag,
      ],
      { env: { ...process.env, ...identities } },
    );
    dockerOk(["cp", "-", `${s3Name}:/`], { input: tar });
    dockerOk(["start", s3Name]);
    dockerOk(["run", "-d", "--name", clientName, "--label", LABEL, "--network", network, "-v", `${STANDIN_DIR}:/standin/app:ro`, "-v", `${workDir}:/work:ro`, images.client.tag, "sleep", "infinity"]);
    for (;;) {
      const state = docker(["inspect", "--format", "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", s3Name]).stdout.trim();
      if (state === "running healthy") break;
      if (!state.startsWith("running") || Date.now() - t1 > 60_000) throw new Error(`the stand-in did not become healthy (${state}):\n${standinLog()}`);
      await sleep(200);
    }
    timings["stand-in healthy after create"] = Date.now() - t1;
    timings["setup total"] = Date.now() - t0;
  }, 30 * 60_000);

  afterAll(() => {
    cleanUp();
    console.info(`S3 stand-in timings (ms): ${Object.entries(timings).map(([k, v]) => `${k}=${v}`).join(", ")}`);
  }, 60_000);

  test("the container is up and healthy; its healthcheck fails fast on a dead port", () => {
    expect(standinLog()).toMatch(new RegExp(`s3 stand-in ready on https://0\\.0\\.0\\.0:${S3_PORT}, bucket ${bucket}, 3 identities, object lock on, node v20\\.`));
    expect(docker(["exec", s3Name, "node", "/standin/app/healthcheck.js"]).code).toBe(0);
    const dead = docker(["exec", "-e", "S3_PORT=1", s3Name, "node", "/standin/app/healthcheck.js"]);
    expect(dead.code).toBe(1);
    expect(dead.ms).toBeLessThan(5000);
    // The node modules and the code are the repository's, read-only.
    expect(docker(["exec", s3Name, "sh", "-c", "touch /standin/app/x || touch /standin/node_modules/x"]).code).not.toBe(0);
  }, 60_000);

  test("(1) boto3 with Content-MD5 (when_required): put, get, list, multipart, delete round trip", () => {
    const r = scenario<{
      small_equal: boolean;
      small_length: boolean;
      multi_equal: boolean;
      multi_length: number;
      listed: string[];
      delete_objects_deleted: string[];
      delete_objects_errors: unknown[];
      after_delete: number;
      requests: RequestSeen[];
    }>("roundtrip");
    expect(r).toMatchObject({ small_equal: true, small_length: true, multi_equal: true, multi_length: 10 * 1024 * 1024, listed: ["multi", "small"], delete_objects_deleted: ["multi"], delete_objects_errors: [], after_delete: 0 });
    // Every upload carried Content-MD5 and nothing else: the Object Lock bucket accepted exactly that.
    const uploads = r.requests.filter((q) => q.op === "PutObject" || q.op === "UploadPart");
    expect(uploads).toHaveLength(3);
    for (const q of uploads) expect(q).toMatchObject({ "content-md5": true, "checksum-headers": [], "content-encoding": null });
  }, 120_000);

  test("(2) boto3's default flexible checksums (aws-chunked, CRC32 trailer): the object holds exactly the bytes sent", () => {
    const r = scenario<{
      equal: boolean;
      length: number;
      expected_length: number;
      content_encoding: string | null;
      put_checksum_crc32: string | null;
      expected_crc32: string;
      transfer_equal: boolean;
      sha256: string;
      requests: RequestSeen[];
    }>("default");
    // What boto3 sent: no Content-MD5, an aws-chunked body with a CRC32 trailer, for the put and the parts.
    const uploads = r.requests.filter((q) => q.op === "PutObject" || q.op === "UploadPart");
    expect(uploads.map((q) => q.op)).toEqual(["PutObject", "UploadPart", "UploadPart"]);
    for (const q of uploads) {
      expect(q).toMatchObject({ "content-md5": false, "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32" });
    }
    expect(r).toMatchObject({ equal: true, length: r.expected_length, transfer_equal: true, content_encoding: null });
    // S3 answers the verified checksum, as boto3's transfer manager expects for CompleteMultipartUpload.
    expect(r.put_checksum_crc32).toBe(r.expected_crc32);
    // On the volume: the decoded bytes, no chunk framing.
    const onDisk = docker(["exec", s3Name, "sh", "-c", `sha256sum "/data/${bucket}/${run}/default/put._S3rver_object"`]);
    expect(onDisk.stdout.split(" ")[0]).toBe(r.sha256);
  }, 120_000);

  test("(3) Object Lock: an upload with neither Content-MD5 nor x-amz-checksum-* is refused with S3's message", () => {
    const r = scenario<{ put: S3Error | null; upload_part: S3Error | null; abort: S3Error | null; abort_again: S3Error | null; stored: boolean; requests: RequestSeen[] }>("no-md5");
    expect(r.put).toEqual({ status: 400, code: "InvalidRequest", message: OBJECT_LOCK_MESSAGE });
    expect(r.upload_part).toEqual({ status: 400, code: "InvalidRequest", message: OBJECT_LOCK_MESSAGE });
    // AbortMultipartUpload (which s3rver lacks) is the stand-in's: the upload is gone after it.
    expect(r.abort).toBeNull();
    expect(r.abort_again).toMatchObject({ status: 404, code: "NoSuchUpload" });
    expect(r.stored).toBe(false);
    expect(r.requests.find((q) => q.op === "PutObject")).toMatchObject({ "content-md5": false, "checksum-headers": [], "content-encoding": null });
  }, 120_000);

  test("(4) a wrong Content-MD5 is refused with 400 BadDigest (a malformed one with InvalidDigest), nothing stored", () => {
    const r = scenario<{ error: S3Error | null; malformed: S3Error | null; stored: boolean }>("bad-md5");
    expect(r.error).toMatchObject({ status: 400, code: "BadDigest" });
    expect(r.malformed).toMatchObject({ status: 400, code: "InvalidDigest" });
    expect(r.stored).toBe(false);
  }, 120_000);

  test("(5) a wrong secret key is refused with 403 SignatureDoesNotMatch", () => {
    const r = scenario<{ list: S3Error | null; put: S3Error | null; stored: boolean }>("bad-secret");
    expect(r.list).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    expect(r.put).toMatchObject({ status: 403, code: "SignatureDoesNotMatch" });
    expect(r.stored).toBe(false);
  }, 120_000);

  test("x-amz-checksum-sha256|sha1|crc32|crc32c headers are verified; mismatches are 400 BadDigest", () => {
    const r = scenario<{ crc32c_check: string; ok: Record<string, S3Error | null>; bad: Record<string, S3Error | null>; stored: string[]; equal: boolean; requests: RequestSeen[] }>("checksums");
    expect(r.crc32c_check).toBe("e3069283");
    expect(r.ok).toEqual({ sha256: null, sha1: null, crc32: null, crc32c: null });
    for (const [alg, err] of Object.entries(r.bad)) expect([alg, err]).toEqual([alg, expect.objectContaining({ status: 400, code: "BadDigest" })]);
    expect(r.bad.crc32c?.message).toBe("The CRC32C you specified did not match the calculated checksum.");
    expect(r.stored).toEqual(["crc32", "crc32c", "sha1", "sha256"]);
    expect(r.equal).toBe(true);
    expect(r.requests.filter((q) => q.op === "PutObject").map((q) => q["checksum-headers"])).toEqual([
      ["x-amz-checksum-sha256"],
      ["x-amz-checksum-sha1"],
      ["x-amz-checksum-crc32"],
      ["x-amz-checksum-crc32c"],
      ["x-amz-checksum-crc32"],
      ["x-amz-checksum-crc32c"],
      ["x-amz-checksum-sha256"],
    ]);
  }, 120_000);

  test("hand-made requests: bad trailers and lengths, signed streaming, payload hash mismatch, anonymous", () => {
    const r = scenario<Record<string, RawAnswer> & { good_bytes: boolean; stored: string[] }>("raw");
    expect(r.good).toEqual({ status: 200, code: null });
    expect(r.good_bytes).toBe(true);
    expect(r.bad_trailer).toEqual({ status: 400, code: "BadDigest" });
    expect(r.short).toEqual({ status: 400, code: "IncompleteBody" });
    expect(r.no_trailer).toEqual({ status: 400, code: "MalformedTrailerError" });
    expect(r.signed_streaming).toEqual({ status: 501, code: "NotImplemented" });
    expect(r.sha_mismatch).toEqual({ status: 400, code: "XAmzContentSHA256Mismatch" });
    expect(r.anonymous).toEqual({ status: 403, code: "AccessDenied" });
    expect(r.anonymous_put).toEqual({ status: 403, code: "AccessDenied" });
    expect(r.stored).toEqual(["good"]);
  }, 120_000);

  test("(6) pgBackRest 2.55 as a real client: repo-put (single and multipart), repo-get, repo-ls, repo-rm", () => {
    const before = standinStreams();
    const r = scenario<Record<string, PgbackrestStep>>("pgbackrest", "postgres");
    for (const step of ["put_small", "get_small", "put_big", "get_big", "ls", "rm", "ls_after_rm"]) expect([step, r[step].rc, r[step].stderr]).toEqual([step, 0, ""]);
    expect(r.get_small.equal).toBe(true);
    expect(r.get_big.equal).toBe(true);
    expect(r.ls.listing).toMatchObject({ small: { type: "file", size: 100_000 }, big: { type: "file", size: 7 * 1024 * 1024 + 3 } });
    expect(r.ls_after_rm.listing).toEqual({ ".": { type: "path" } });
    // Everything pgBackRest sent was accepted, its uploads and deletes verified by their Content-MD5
    // (and its payload hashes): what the Object Lock bucket asks for.
    const after = standinStreams();
    expect(after.stderr.slice(before.stderr.length)).not.toMatch(/s3 refused/);
    const accepted = (op: string) => after.stdout.slice(before.stdout.length).split("\n").filter((l) => l.startsWith("s3 accepted ") && l.includes(`: ${op}`));
    const prefix = `/${bucket}/pgharbor/test/${run}/pgbackrest/`;
    expect(accepted("PutObject")).toEqual([`s3 accepted PUT ${prefix}small: PutObject verified content-md5, x-amz-content-sha256`]);
    expect(accepted("UploadPart")).toEqual([1, 2].map(() => `s3 accepted PUT ${prefix}big?partNumber&uploadId: UploadPart verified content-md5, x-amz-content-sha256`));
    expect(accepted("DeleteObjects")).toEqual([`s3 accepted POST /${bucket}/?delete: DeleteObjects verified content-md5, x-amz-content-sha256`]);
  }, 180_000);

  test("one log line per refused request (method, path, code, reason), never a key, none for the healthcheck", () => {
    const log = standinLog();
    const refused = log.split("\n").filter((l) => l.startsWith("s3 refused "));
    const expectLine = (re: RegExp) => expect(refused.some((l) => re.test(l))).toBe(true);
    const at = (suffix: string) => `/${bucket}/${run}/${suffix}`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expectLine(new RegExp(`^s3 refused PUT ${at("no-md5/object")}: 400 InvalidRequest \\(Object Lock bucket`));
    expectLine(new RegExp(`^s3 refused PUT ${at("no-md5/object")}\\?partNumber&uploadId: 400 InvalidRequest`));
    expectLine(new RegExp(`^s3 refused PUT ${at("bad-md5/object")}: 400 BadDigest \\(Content-MD5 does not match the body\\)`));
    expectLine(new RegExp(`^s3 refused GET /${bucket}\\?encoding-type&list-type: 403 SignatureDoesNotMatch \\(signature does not match\\)`));
    expectLine(new RegExp(`^s3 refused PUT ${at("raw/bad-trailer")}: 400 BadDigest \\(x-amz-checksum-crc32 does not match the body\\)`));
    expectLine(new RegExp(`^s3 refused PUT ${at("raw/signed")}: 501 NotImplemented`));
    expectLine(new RegExp(`^s3 refused GET /${bucket}\\?list-type: 403 AccessDenied \\(no Authorization header`));
    // Nothing refused for the clients that should pass, nor the healthcheck (every second), nor 404s.
    for (const ok of ["roundtrip/", "default/", "checksums/sha256", "checksums/crc32c ", "raw/good", "pgbackrest/"]) expect(refused.filter((l) => l.includes(`${run}/${ok}`))).toEqual([]);
    expect(refused.filter((l) => /^s3 refused (GET|HEAD) \/:/.test(l))).toEqual([]);
    expect(refused.filter((l) => / 404 /.test(l))).toEqual([]);
    for (const value of Object.values(identities)) expect(log).not.toContain(value);
  }, 60_000);

  test("stops on SIGTERM (docker stop) promptly, exiting 0", () => {
    const r = docker(["stop", "-t", "10", s3Name], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(5000);
    expect(docker(["inspect", "--format", "{{.State.ExitCode}}", s3Name]).stdout.trim()).toBe("0");
    expect(standinLog()).toMatch(/s3 stand-in stopping \(SIGTERM\)/);
  }, 60_000);
}
