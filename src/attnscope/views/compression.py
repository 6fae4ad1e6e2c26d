"""Layer bytes deflated for pages without a kernel: standalone HTML, notebooks' static copies, atlas pages.

A view's page carries its layers as base64 text inside the HTML. There they travel deflated (raw DEFLATE,
RFC 1951, no zlib or gzip wrapper), and the header's ``encoding`` says so with ``"compression":
"deflate-raw"``, the name the browser's ``DecompressionStream`` takes; the page inflates each layer
(static/common.js, ``inflate``) into exactly the bytes `Payload.layer_bytes` gives, so every view draws
what it drew from uncompressed bytes. An ``encoding`` without ``compression`` means plain bytes: the
notebook widget's binary buffers and the server's ``/api/attention`` layers stay so (see `LEVEL` and
`views.widget` for why).

`LEVEL` is 1, measured with bench/views.py's attention (12 layers x 12 heads): dense layers at 128 tokens
deflate to 34% of their bytes at level 1 (29% at 6), at 512 tokens to 20% in 0.24 s for the 12 layers
(15% in 1.8 s at level 6); sparse layers (2,048 tokens) to 68% at level 1 and 67% at 6. Level 1 meets the
size goals with the least time added to building a page, which long inputs are measured by.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

COMPRESSION = "deflate-raw"
"""What the header's ``encoding["compression"]`` says of deflated layers: `DecompressionStream`'s name for
raw DEFLATE (``zlib`` with ``wbits=-15``)."""
LEVEL = 1
"""zlib's compression level for layers (see the module docstring for the measurements)."""
_RAW = -15  # zlib's wbits for raw DEFLATE: a 32 kB window, no header, no checksum


def deflate(data: bytes, level: int = LEVEL) -> bytes:
    """``data`` as raw DEFLATE, which ``DecompressionStream("deflate-raw")`` (and `inflate`) turn back into it."""
    packer = zlib.compressobj(level, zlib.DEFLATED, _RAW)
    return packer.compress(data) + packer.flush()


def inflate(data: bytes, compression: str | None) -> bytes:
    """Bytes as a page reads them: ``data`` inflated when ``compression`` is `COMPRESSION`, as they are when it is
    None; any other compression raises `ValueError` naming the ones known (for tests and tools)."""
    if compression is None:
        return data
    if compression != COMPRESSION:
        raise ValueError(f"unknown compression {compression!r}: layers are plain (None) or {COMPRESSION!r}")
    return zlib.decompress(data, _RAW)


def compressed_header(header: dict[str, Any], compression: str | None = COMPRESSION) -> dict[str, Any]:
    """A copy of a view's ``header`` whose ``encoding`` names ``compression`` (None: the header as it is)."""
    if compression is None:
        return header
    return {**header, "encoding": {**header.get("encoding", {}), "compression": compression}}


def to_base64(data: bytes, compression: str | None = COMPRESSION) -> str:
    """One layer's bytes as the base64 text a page carries: deflated first unless ``compression`` is None."""
    if compression is not None and compression != COMPRESSION:
        raise ValueError(f"unknown compression {compression!r}: layers are plain (None) or {COMPRESSION!r}")
    return base64.b64encode(deflate(data) if compression else data).decode("ascii")
