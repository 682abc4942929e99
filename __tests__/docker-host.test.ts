import { Testing, TerraformStack } from "cdktf";
import { DockerHost } from "../constructs/docker-host";
import { contextHash, imageContextDir } from "../constructs/image-context";
import { dev, prod, synthEnv } from "./helpers";

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
    expect(build.context).toMatch(/^assets\/local_PostgresImage17_context_[0-9A-F]+\/[0-9A-F]+$/);
    // The provider reads the Dockerfile path relative to Terraform's working directory (the stack's folder).
    expect(build.dockerfile).toBe(`${build.context}/Dockerfile`);
    expect(img.name).toBe(`pgharbor/postgres:17-${contextHash(imageContextDir("postgres"), { PG_MAJOR: "17" })}`);
    expect(img.keep_locally).toBe(true);
  });
  test("an image is built once per host however many containers use it", () => {
    const app = Testing.app();
    const stack = new TerraformStack(app, "s");
    const h = new DockerHost(stack, "h", { environment: "t" });
    expect(h.postgresImage(17)).toBe(h.postgresImage(17));
    expect(h.postgresImage(16)).not.toBe(h.postgresImage(17));
  });
});
