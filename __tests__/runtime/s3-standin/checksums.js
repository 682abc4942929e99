// The additional checksums S3 verifies on uploads (x-amz-checksum-crc32|crc32c|sha1|sha256, in a
// header or an aws-chunked trailer): each value is the base64 of the big-endian digest of the object's
// bytes as stored (decoded). CRC32 comes from node's zlib.crc32 (node >= 20.15; Debian trixie ships
// 20.19) with a table fallback; CRC32C (Castagnoli) is the same table algorithm with its polynomial.
// CRC64NVME is not implemented: the server answers 501 NotImplemented for it.
"use strict";
const crypto = require("crypto");
const zlib = require("zlib");

/** Reflected CRC-32 over a 256-entry table, for a reflected polynomial. */
function tableCrc32(poly) {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[n] = c;
  }
  return (buf, previous = 0) => {
    let c = ~previous;
    for (let i = 0; i < buf.length; i++) c = table[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
  };
}

const crc32Native = typeof zlib.crc32 === "function";
const crc32 = crc32Native ? (buf, previous = 0) => zlib.crc32(buf, previous) >>> 0 : tableCrc32(0xedb88320);
const crc32c = tableCrc32(0x82f63b78);

function crcHasher(fn) {
  let value = 0;
  return {
    update(buf) {
      value = fn(buf, value);
    },
    digest() {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(value >>> 0);
      return out;
    },
  };
}

function nodeHasher(algorithm) {
  const hash = crypto.createHash(algorithm);
  return { update: (buf) => hash.update(buf), digest: () => hash.digest() };
}

/** By the lowercase suffix of the header name: S3's name for messages, digest size, a new hasher. */
const ALGORITHMS = {
  crc32: { name: "CRC32", size: 4, create: () => crcHasher(crc32) },
  crc32c: { name: "CRC32C", size: 4, create: () => crcHasher(crc32c) },
  sha1: { name: "SHA1", size: 20, create: () => nodeHasher("sha1") },
  sha256: { name: "SHA256", size: 32, create: () => nodeHasher("sha256") },
};

/** Algorithms S3 knows that the stand-in does not compute (answered 501 NotImplemented). */
const NOT_IMPLEMENTED = new Set(["crc64nvme"]);

/** x-amz-checksum-* headers that carry no checksum value. */
const NOT_VALUES = new Set(["algorithm", "type", "mode"]);

/** Decodes a base64 digest of exactly `size` bytes, or undefined when it is not one. */
function decodeDigest(value, size) {
  const text = String(value).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.length === size ? bytes : undefined;
}

module.exports = { ALGORITHMS, NOT_IMPLEMENTED, NOT_VALUES, crc32, crc32c, crc32Native, decodeDigest, tableCrc32 };
