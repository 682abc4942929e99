/**
 * Runs the engine-pending scenarios once against a local Docker engine, with an image that has
 * PostgreSQL 17 (binaries in /usr/lib/postgresql/17/bin, a postgres user, openssl):
 *
 *   PGHARBOR_ENGINE_IMAGE=bt:1 npx ts-node --transpile-only __tests__/engine-pending/run-by-hand.ts
 *
 * This is the by-hand wiring; the Docker-engine runtime suite provides its own Postgres17Engine.
 */
import { spawnSync } from "child_process";
import { catalogueMatchesServer } from "./catalogue.engine";
import { ExecResult, Postgres17, Postgres17Engine } from "./engine";
import { noPasswordInServerLog } from "./password-logging.engine";

const IMAGE = process.env.PGHARBOR_ENGINE_IMAGE ?? "bt:1";
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

export const dockerEngine: Postgres17Engine = {
  async start(files) {
    const name = `pgharbor-engine-pending-${process.pid}-${++counter}`;
    must(docker(["run", "-d", "--name", name, IMAGE, "sleep", "infinity"]), "docker run");
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

async function main() {
  const catalogue = await catalogueMatchesServer(dockerEngine);
  console.log(JSON.stringify({ catalogue }, null, 2));
  const passwords = await noPasswordInServerLog(dockerEngine);
  console.log(JSON.stringify({ passwords }, null, 2));
  // Negative control: pgharbor's old logging settings must leak in the same scenario.
  const control = await noPasswordInServerLog(dockerEngine, { log_statement: "ddl", log_min_error_statement: "error", "pg_stat_statements.track_utility": "on" });
  console.log(JSON.stringify({ negativeControl: { leaks: control.leaks.length, where: [...new Set(control.leaks.map((l) => l.split(":")[0]))] } }, null, 2));
  const ok = catalogue.differences.length === 0 && catalogue.configComplaints.length === 0 && passwords.leaks.length === 0 && control.leaks.length > 0;
  process.exitCode = ok ? 0 : 1;
}

if (require.main === module) void main();
