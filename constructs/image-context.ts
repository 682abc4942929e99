import { createHash } from "crypto";
import { readdirSync, readFileSync, statSync } from "fs";
import { join, relative } from "path";

/** The images pgharbor builds, each a folder of images/ holding its Dockerfile and programs. */
export type ImageName = "postgres" | "pgbouncer" | "monitoring" | "seaweedfs";

/** Absolute path of an image's build context in this checkout. */
export function imageContextDir(image: ImageName): string {
  return join(__dirname, "..", "images", image);
}

/** Files of a build context, sorted; Python caches never belong to one. */
function contextFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === "__pycache__" || e.name.endsWith(".pyc")) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Content address of a build context and its build arguments: every file's path, executable bit and
 * bytes. A changed program or Dockerfile changes the tag, so the next deploy builds the image again
 * and replaces the containers that run it; an unchanged context keeps its tag (and the build cache).
 */
export function contextHash(dir: string, buildArgs: Record<string, string> = {}): string {
  const h = createHash("sha256");
  for (const f of contextFiles(dir)) {
    const rel = relative(dir, f).split("\\").join("/");
    h.update(`${rel}\0${statSync(f).mode & 0o111 ? "x" : "-"}\0`);
    h.update(readFileSync(f));
    h.update("\0");
  }
  for (const k of Object.keys(buildArgs).sort()) h.update(`arg ${k}=${buildArgs[k]}\0`);
  return h.digest("hex").slice(0, 16);
}
