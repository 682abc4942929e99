/** Paths of the dev S3 server's container (images/seaweedfs): its TLS files and data directory. */
export const SEAWEEDFS_PATHS = {
  certFile: "/etc/pgharbor/tls/s3.crt",
  keyFile: "/etc/pgharbor/tls/s3.key",
  dataDir: "/data",
} as const;
