/**
 * Which attribute changes replace a resource, per resource type, as the pinned providers' schemas say.
 * The review uses this the way `terraform plan` uses the schemas: a changed ForceNew (RequiresReplace)
 * attribute means destroy-and-create.
 *
 * kreuzwerker/docker 3.6.2 (what @cdktf/provider-docker 12.0.3 pins), read from
 * internal/provider/resource_docker_container.go and resource_docker_container_funcs.go at tag v3.6.2:
 * every docker_container attribute is ForceNew except the ones listed below. Of those,
 * resourceDockerContainerUpdate applies only restart, max_retry_count, cpu_shares, memory, cpu_set and
 * memory_swap to the running container (one ContainerUpdate call, no restart). The others (healthcheck,
 * cpu_period, cpu_quota, destroy_grace_seconds, …) change in Terraform's state only: the running
 * container keeps its old value until it is replaced for another reason. `upload` is ForceNew with the
 * provider's own comment: "The container is mutated once, and never updated later."
 * docker_image: name, build, triggers, pull_triggers and platform are ForceNew. docker_volume and
 * docker_network: every attribute is ForceNew.
 *
 * hashicorp/random 3.7: every random_password argument (length, special, min_*, keepers, …) is
 * RequiresReplace. hashicorp/tls 4.x: every argument of tls_private_key, tls_cert_request,
 * tls_self_signed_cert and tls_locally_signed_cert is RequiresReplace except early_renewal_hours
 * (internal/provider/resource_locally_signed_cert.go).
 *
 * hashicorp/aws 6.x: the attributes below are ForceNew; everything else of these types is updated in
 * place. A type not listed here is reported as an in-place update with a note to check `terraform plan`.
 */
import { Effect } from "./types";

/** docker_container attributes updated in place and applied live by `docker update` (no restart). */
export const DOCKER_CONTAINER_LIVE = new Set(["restart", "max_retry_count", "cpu_shares", "memory", "cpu_set", "memory_swap"]);

/** docker_container attributes that are not ForceNew and that the provider never applies to a running container. */
export const DOCKER_CONTAINER_STATE_ONLY = new Set([
  "rm",
  "start",
  "wait",
  "wait_timeout",
  "attach",
  "logs",
  "must_run",
  "remove_volumes",
  "tmpfs",
  "destroy_grace_seconds",
  "healthcheck",
  "container_read_refresh_timeout_milliseconds",
  "init",
  "cpu_period",
  "cpu_quota",
]);

const ALL = "all" as const;

/** ForceNew attributes per type ("all": every argument). */
const FORCE_NEW: Record<string, ReadonlySet<string> | typeof ALL> = {
  docker_image: new Set(["name", "build", "triggers", "pull_triggers", "platform"]),
  docker_volume: ALL,
  docker_network: ALL,
  random_password: ALL,
  random_string: ALL,
  random_id: ALL,
  tls_private_key: ALL,
  tls_cert_request: ALL,
  tls_self_signed_cert: ALL,
  tls_locally_signed_cert: ALL,
  aws_s3_bucket: new Set(["bucket", "bucket_prefix", "object_lock_enabled"]),
  aws_kms_key: new Set(["customer_master_key_spec", "key_usage", "multi_region", "custom_key_store_id", "xks_key_id"]),
  aws_kms_alias: new Set(["name", "name_prefix"]),
  aws_iam_user: new Set<string>(),
  aws_iam_user_policy: new Set(["name", "name_prefix", "user"]),
  aws_iam_access_key: new Set(["user", "pgp_key"]),
  aws_s3_bucket_policy: new Set(["bucket"]),
  aws_s3_bucket_versioning: new Set(["bucket", "expected_bucket_owner"]),
  aws_s3_bucket_server_side_encryption_configuration: new Set(["bucket", "expected_bucket_owner"]),
  aws_s3_bucket_public_access_block: new Set(["bucket"]),
  aws_s3_bucket_ownership_controls: new Set(["bucket"]),
  aws_s3_bucket_lifecycle_configuration: new Set(["bucket", "expected_bucket_owner"]),
  aws_s3_bucket_object_lock_configuration: new Set(["bucket", "expected_bucket_owner", "object_lock_enabled"]),
};

/** Arguments that are not RequiresReplace although the type's others are. */
const IN_PLACE_EXCEPTIONS: Record<string, ReadonlySet<string>> = {
  tls_self_signed_cert: new Set(["early_renewal_hours"]),
  tls_locally_signed_cert: new Set(["early_renewal_hours"]),
  docker_image: new Set(["keep_locally", "force_remove"]),
};

/**
 * Optional+Computed arguments: left out of the configuration, Terraform keeps what the object has
 * (no diff). docker_container's from resource_docker_container.go v3.6.2; aws_s3_bucket's lock flag.
 */
const OPTIONAL_COMPUTED: Record<string, ReadonlySet<string>> = {
  docker_container: new Set(["hostname", "command", "entrypoint", "security_opts", "runtime", "stop_signal", "stop_timeout", "env", "labels", "shm_size", "log_driver", "healthcheck", "ipc_mode", "init"]),
  docker_volume: new Set(["name", "driver"]),
  aws_s3_bucket: new Set(["object_lock_enabled", "bucket"]),
};

/** True when leaving `attribute` out of the configuration changes nothing (Optional+Computed). */
export function keptWhenRemoved(type: string, attribute: string): boolean {
  return OPTIONAL_COMPUTED[type]?.has(attribute) ?? false;
}

/** True when the review knows the type's schema (else: "check terraform plan"). */
export function knownType(type: string): boolean {
  return type === "docker_container" || type in FORCE_NEW;
}

/** What a change of `attribute` does to a resource of `type`. */
export function effectOf(type: string, attribute: string): Effect {
  if (type === "docker_container") {
    if (DOCKER_CONTAINER_LIVE.has(attribute)) return "in-place";
    if (DOCKER_CONTAINER_STATE_ONLY.has(attribute)) return "state-only";
    return "replace";
  }
  if (IN_PLACE_EXCEPTIONS[type]?.has(attribute)) return "in-place";
  const f = FORCE_NEW[type];
  if (f === ALL) return "replace";
  return f?.has(attribute) ? "replace" : "in-place";
}
