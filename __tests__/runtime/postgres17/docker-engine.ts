/**
 * A Postgres17Engine on the local Docker engine: each server a container of the given image (the
 * postgres image the stack builds, in images.runtime.test.ts), driven with the docker CLI.
 */
import { spawnSync } from "child_process";
import { ExecResult, Postgres17, Postgres17Engine } from "./engine";

const BIN = "/usr/lib/postgresql/17/bin";

function docker(args: string[], input?: string): ExecResult {
  const r = spawnSync("docker", args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
}

function must(r: ExecResult, what: string): ExecResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

let counter = 0;

class DockerPostgres17 implements Postgres17 {
  constructor(public readonly container: string) {}
  async exec(argv: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<ExecResult> {
    const env = Object.entries({ PATH: `${BIN}:/usr/local/bin:/usr/bin:/bin`, ...(opts.env ?? {}) }).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    return docker(["exec", "-i", "-u", "postgres", ...env, this.container, ...argv], opts.input ?? "");
  }
  async serverLog(): Promise<string> {
    return must(docker(["exec", this.container, "cat", "/tmp/pgharbor-server.log"]), "reading the server log").stdout;
  }
}

export function dockerPostgres17Engine(image: string): Postgres17Engine {
  return {
    async start(files) {
      const name = `pgharbor-pg17-${process.pid}-${++counter}`;
      must(docker(["run", "-d", "--name", name, "--entrypoint", "sleep", image, "infinity"]), "docker run");
      const root = (script: string, input?: string, ...args: string[]) => must(docker(["exec", "-i", "-u", "root", name, "sh", "-c", script, "sh", ...args], input ?? ""), script.slice(0, 40));
      for (const [path, content] of Object.entries(files)) {
        root('mkdir -p "$(dirname "$1")" && cat > "$1" && chown postgres:postgres "$1" && case "$1" in *.key) chmod 600 "$1";; esac', content, path);
      }
      root(
        "mkdir -p /etc/postgresql/tls /run/pgharbor /var/run/postgresql /var/lib/postgresql/data && " +
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost -keyout /run/pgharbor/server.key -out /etc/postgresql/tls/server.crt 2>/dev/null && " +
          "chown -R postgres:postgres /etc/postgresql /run/pgharbor /var/run/postgresql /var/lib/postgresql && chmod 600 /run/pgharbor/server.key && chmod 700 /var/lib/postgresql/data",
      );
      const pg = new DockerPostgres17(name);
      must(await pg.exec(["initdb", "-D", "/var/lib/postgresql/data", "--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256"]), "initdb");
      must(docker(["exec", "-d", "-u", "postgres", name, "sh", "-c", `exec ${BIN}/postgres -D /var/lib/postgresql/data -c config_file=/etc/postgresql/postgresql.conf 2>/tmp/pgharbor-server.log`]), "postgres");
      for (let i = 0; i < 60; i++) {
        if ((await pg.exec(["pg_isready", "-q", "-h", "/var/run/postgresql"])).code === 0) return pg;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`PostgreSQL did not start:\n${await pg.serverLog()}`);
    },
    async stop(server) {
      docker(["rm", "-f", (server as DockerPostgres17).container]);
    },
  };
}
