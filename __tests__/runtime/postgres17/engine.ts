/**
 * What the engine-pending scenarios need from a Docker-engine runtime suite: a PostgreSQL 17 server
 * started as the postgres user from files pgharbor renders. See README.md in this folder.
 */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One running PostgreSQL 17 server, in its own container. */
export interface Postgres17 {
  /**
   * Runs argv as the postgres OS user inside the server's container (PATH includes PostgreSQL 17's
   * bin directory), with extra environment variables and optional stdin. Never throws on a non-zero exit.
   */
  exec(argv: string[], opts?: { env?: Record<string, string>; input?: string }): Promise<ExecResult>;
  /** Everything the server has written to its log (its stderr) so far. */
  serverLog(): Promise<string>;
}

export interface Postgres17Engine {
  /**
   * Starts PostgreSQL 17 in a fresh container:
   * 1. writes `files` (container path → content; directories created; owned by postgres, 0600 for *.key);
   * 2. puts a self-signed TLS certificate and key where pgharbor's postgresql.conf names them
   *    (/etc/postgresql/tls/server.crt, and /run/pgharbor/server.key owned by postgres, mode 0600);
   * 3. runs initdb as postgres into /var/lib/postgresql/data with `--data-checksums --auth-local=peer
   *    --auth-host=scram-sha-256` (what the official image's entrypoint does with pgharbor's
   *    POSTGRES_INITDB_ARGS), /var/run/postgresql existing and owned by postgres;
   * 4. starts `postgres -c config_file=/etc/postgresql/postgresql.conf` as postgres, its stderr kept as
   *    the server log, and resolves once `pg_isready -h /var/run/postgresql` answers.
   */
  start(files: Record<string, string>): Promise<Postgres17>;
  /** Stops the server and removes its container. */
  stop(server: Postgres17): Promise<void>;
}

/** psql as the superuser over the socket, unaligned and tuples only, stopping at the first error. */
export function superuserPsql(pg: Postgres17, sql: string, database = "postgres"): Promise<ExecResult> {
  return pg.exec(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql", "-U", "postgres", "-d", database, "-c", sql]);
}
