"""Request bodies in `zstd` and `br`, with the same limit as gzip (`sdk_events.decode_body` calls this).

Statsig's core SDKs (`@statsig/statsig-node-core` 0.23.2) send their event batches with
`Content-Encoding: zstd`; brotli is the other coding their HTTP stack offers. Both are decoded with
the output bounded as it is produced, so a small body that inflates past `limit` (a decompression
bomb) costs at most about one chunk more than `limit` before it is refused with a 413, and a
truncated or corrupt body is a 400, never a partial batch.
"""

from __future__ import annotations

import io

import brotli
import zstandard

from openautotune.api.errors import ApiError

CHUNK = 1024 * 1024
# zstd's window is the memory a frame may make the decoder allocate; real SDK batches use far less.
MAX_ZSTD_WINDOW = 16 * 1024 * 1024
CORRUPT = "The body is not valid {} data"
TRUNCATED = "The compressed body is truncated"


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The decompressed body is larger than {limit} bytes")


def _zstd(body: bytes, limit: int) -> bytes:
    """Every frame of a zstd body. A bounded read first proves the size; then the frames are decoded
    one by one, which also notices a truncated last frame or trailing garbage."""
    if not body:
        raise ApiError(400, CORRUPT.format("zstd"))
    decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW)
    try:
        with decompressor.stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
            if len(reader.read(limit + 1)) > limit:
                raise _too_large(limit)
        out = bytearray()
        data = body
        while data:
            frame = decompressor.decompressobj()
            out += frame.decompress(data)
            if not frame.eof:
                raise ApiError(400, TRUNCATED)
            data = frame.unused_data
    except zstandard.ZstdError:
        raise ApiError(400, CORRUPT.format("zstd")) from None
    if len(out) > limit:  # cannot happen after the bounded read; kept as the limit's last guard
        raise _too_large(limit)
    return bytes(out)


def _brotli(body: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    try:
        out = bytearray(decompressor.process(body, output_buffer_limit=CHUNK))
        while not decompressor.is_finished() and len(out) <= limit:
            chunk = decompressor.process(b"", output_buffer_limit=CHUNK)
            if not chunk and decompressor.can_accept_more_data():
                break  # all input used, stream not finished
            out += chunk
    except brotli.error:
        raise ApiError(400, CORRUPT.format("brotli")) from None
    if len(out) > limit:
        raise _too_large(limit)
    if not decompressor.is_finished():
        raise ApiError(400, TRUNCATED)
    return bytes(out)


def decode_other(body: bytes, encoding: str, limit: int) -> bytes:
    """Decode a body in a coding other than gzip, deflate and identity (`encoding` is lower-case)."""
    if encoding == "zstd":
        return _zstd(body, limit)
    if encoding == "br":
        return _brotli(body, limit)
    raise ApiError(400, f"Unsupported Content-Encoding {encoding!r}: send zstd, gzip, br or plain JSON")
