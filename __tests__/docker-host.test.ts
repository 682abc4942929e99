import { Testing, TerraformStack } from "cdktf";
import { DockerHost } from "../constructs/docker-host";
import { contextHash, imageContextDir } from "../constructs/image-context";
import { containers, dev, prod, synthEnv } from "./helpers";

describe("DockerHost", () => {
  test("one aliased provider and one private network per host", () => {
    const json = synthEnv(prod);
    const providers = (json.provider as { docker: Array<{ alias: string; host: string }> }).docker;
    expect(providers.map((p) => [p.alias, p.host])).toEqual([
      ["db-1", "ssh://deploy@db-1.example.internal"],
      ["db-2", "ssh://deploy@db-2.example.internal"],
      ["db-3", "ssh://deploy@db-3.example.internal"],
    ]);
    expect(Object.values(json.resource!.docker_network).map((n) => [n.name, n.provider])).toEqual([
      ["pgharbor-prod", "docker.db-1"],
      ["pgharbor-prod", "docker.db-2"],
      ["pgharbor-prod", "docker.db-3"],
    ]);
  });
  test("images are built per host from a content-addressed build context", () => {
    const json = synthEnv(dev);
    const img = Object.values(json.resource!.docker_image).find((i) => String(i.name).startsWith("pgharbor/postgres:17-"))!;
    const build = img.build as { context: string; dockerfile: string };
    const hash = contextHash(imageContextDir("postgres"), { PG_MAJOR: "17" });
    // The asset folder carries the same content address (build.context is ForceNew: a folder name that
    // moved with unrelated files would replace every container running the image).
    expect(build.context).toMatch(new RegExp(`^assets/local_PostgresImage17_context_[0-9A-F]+/${hash}$`));
    // The provider reads the Dockerfile path relative to Terraform's working directory (the stack's folder).
    expect(build.dockerfile).toBe(`${build.context}/Dockerfile`);
    expect(img.name).toBe(`pgharbor/postgres:17-${hash}`);
    expect(img.keep_locally).toBe(true);
  });
  test("the backup image is built on the server image, which Terraform builds first", () => {
    const json = synthEnv(dev);
    const images = Object.entries(json.resource!.docker_image) as Array<[string, { name: string; build: { build_args?: Record<string, string> } }]>;
    const [serverId, server] = images.find(([, i]) => i.name.startsWith("pgharbor/postgres:17-"))!;
    const [, backup] = images.find(([, i]) => i.name.startsWith("pgharbor/backup:17-"))!;
    expect(backup.build.build_args).toEqual({ BASE_IMAGE: `\${docker_image.${serverId}.name}` });
    expect(backup.name).toBe(`pgharbor/backup:17-${contextHash(imageContextDir("backup"), { BASE_IMAGE: server.name })}`);
    const c = containers(json);
    expect(c["pgharbor-dev-backup"].image).toMatch(/^\$\{docker_image\.local_BackupImage17_image_[0-9A-F]+\.image_id\}$/);
    expect(c["pgharbor-dev-primary"].image).toBe(`\${docker_image.${serverId}.image_id}`);
  });
  test("an image is built once per host however many containers use it", () => {
    const app = Testing.app();
    const stack = new TerraformStack(app, "s");
    const h = new DockerHost(stack, "h", { environment: "t" });
    expect(h.postgresImage(17)).toBe(h.postgresImage(17));
    expect(h.postgresImage(16)).not.toBe(h.postgresImage(17));
  });
});
