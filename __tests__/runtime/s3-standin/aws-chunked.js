// Decoder of S3's aws-chunked content encoding in its unsigned form (x-amz-content-sha256:
// STREAMING-UNSIGNED-PAYLOAD-TRAILER), which boto3/botocore >= 1.36 and the AWS CLI send by default
// for PutObject and UploadPart over HTTPS:
//
//   <hex size>\r\n<size bytes>\r\n ... 0\r\n<trailer name>:<value>\r\n ... \r\n
//
// (inside the HTTP body, itself usually sent with Transfer-Encoding: chunked, which node decodes).
// The decoded bytes are the object; the trailers carry its checksum. A chunk with a chunk-signature
// extension belongs to the signed variants (STREAMING-AWS4-HMAC-SHA256-PAYLOAD...), which the stand-in
// does not implement.
"use strict";

const MAX_LINE = 8192;
const MAX_CHUNK = 5 * 1024 ** 3;

class ChunkedBodyError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Returns { push(buf, emit), end() }: push feeds the encoded bytes in any slicing and calls emit(buf)
 * with each piece of decoded data; end() throws unless the body ended right after its trailer section
 * and returns { decodedLength, trailers } (a Map of lowercase trailer names to values).
 */
function createAwsChunkedDecoder() {
  let state = "size";
  let pending = null;
  let remaining = 0;
  let decodedLength = 0;
  const trailers = new Map();
  const malformed = (what) => new ChunkedBodyError(400, "InvalidRequest", `malformed aws-chunked body: ${what}`);

  function line(text) {
    switch (state) {
      case "size": {
        const [size, ...extensions] = text.split(";");
        if (extensions.some((e) => e.trim().toLowerCase().startsWith("chunk-signature"))) {
          throw new ChunkedBodyError(501, "NotImplemented", "signed aws-chunked chunks (chunk-signature) are not implemented by the S3 stand-in");
        }
        if (!/^[0-9a-fA-F]{1,16}$/.test(size.trim())) throw malformed(`bad chunk size line ${JSON.stringify(text.slice(0, 40))}`);
        remaining = parseInt(size.trim(), 16);
        if (remaining > MAX_CHUNK) throw malformed("chunk larger than 5 GiB");
        state = remaining === 0 ? "trailer" : "data";
        return;
      }
      case "data-end":
        if (text !== "") throw malformed("chunk data longer than its declared size");
        state = "size";
        return;
      case "trailer": {
        if (text === "") {
          state = "done";
          return;
        }
        const colon = text.indexOf(":");
        if (colon <= 0) throw new ChunkedBodyError(400, "MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.");
        trailers.set(text.slice(0, colon).trim().toLowerCase(), text.slice(colon + 1).trim());
        return;
      }
      default:
        throw malformed(`unexpected state ${state}`);
    }
  }

  function push(input, emit) {
    const buf = pending ? Buffer.concat([pending, input]) : input;
    pending = null;
    let i = 0;
    while (i < buf.length) {
      if (state === "data") {
        const n = Math.min(remaining, buf.length - i);
        emit(buf.subarray(i, i + n));
        decodedLength += n;
        remaining -= n;
        i += n;
        if (remaining === 0) state = "data-end";
        continue;
      }
      if (state === "done") throw malformed("bytes after the trailer section");
      const eol = buf.indexOf("\r\n", i, "latin1");
      if (eol === -1) {
        if (buf.length - i > MAX_LINE) throw malformed("line too long");
        pending = Buffer.from(buf.subarray(i));
        return;
      }
      line(buf.toString("latin1", i, eol));
      i = eol + 2;
    }
  }

  function end() {
    if (state !== "done" || pending) {
      throw new ChunkedBodyError(400, "IncompleteBody", "The request body ended before the final aws-chunked chunk and its trailer section.");
    }
    return { decodedLength, trailers };
  }

  return { push, end };
}

module.exports = { createAwsChunkedDecoder, ChunkedBodyError };
