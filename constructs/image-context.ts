import { createHash } from "crypto";
import { readFileSync } from "fs";
import { join } from "path";

/** The images pgharbor builds, each a folder of images/ holding its Dockerfile and programs. */
export type ImageName = "postgres" | "backup" | "pgbouncer" | "monitoring" | "seaweedfs";

/** Absolute path of an image's build context in this checkout. */
export function imageContextDir(image: ImageName): string {
  return join(__dirname, "..", "images", image);
}

/**
 * The files an image is made of: its Dockerfile and every file its COPY instructions name. Only
 * plain file names are allowed there (no directories, globs or flags), so nothing else of the folder
 * can reach the image unseen.
 */
export function contextFiles(dir: string): string[] {
  const dockerfile = readFileSync(join(dir, "Dockerfile"), "utf8");
  const copied = [...dockerfile.matchAll(/^COPY ((?:[^\n\\]|\\\n)+)/gm)].flatMap((m) => m[1].replace(/\\\n/g, " ").trim().split(/\s+/).slice(0, -1));
  for (const f of copied) {
    if (!/^[A-Za-z0-9_.-]+$/.test(f) || f === "." || f === "..") throw new Error(`${dir}/Dockerfile: COPY ${f}: pgharbor's images copy plain files by name only (the image tag hashes exactly those)`);
  }
  return ["Dockerfile", ...copied].sort();
}

/**
 * Content address of an image: the bytes of its Dockerfile and of every file it copies, and its build
 * arguments. A changed program or Dockerfile changes the tag, so the next deploy builds the image
 * again and replaces the containers that run it; anything else in the folder (an editor's backup
 * file, a checkout's file modes: the Dockerfile sets every mode itself) leaves the tag, and the
 * containers, alone.
 */
export function contextHash(dir: string, buildArgs: Record<string, string> = {}): string {
  const h = createHash("sha256");
  for (const f of contextFiles(dir)) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(dir, f)));
    h.update("\0");
  }
  for (const k of Object.keys(buildArgs).sort()) h.update(`arg ${k}=${buildArgs[k]}\0`);
  return h.digest("hex").slice(0, 16);
}
