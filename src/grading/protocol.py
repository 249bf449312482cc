"""Messages between the grader and its worker (both sides): length-prefixed ``torch.save`` bytes.

Both sides decode with ``torch.load(..., weights_only=True)``, which rebuilds
tensors, numbers, strings, lists, tuples and dicts and never runs code, so a
hostile worker cannot execute anything in the grader by what it sends.
"""
import io
import struct

from .errors import ProtocolError

HEADER = struct.Struct("<Q")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # probes return small results; this bounds what a worker can make the grader hold


def encode(obj):
    import torch  # imported here, so that the grader can start its worker before it loads torch itself

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    return HEADER.pack(len(payload)) + payload


def write_message(stream, obj):
    """Write one message to a binary stream, all of it (raw pipes may take fewer bytes per write)."""
    view = memoryview(encode(obj))
    while view:
        written = stream.write(view)
        if written is None:
            written = 0
        view = view[written:]


def _read_exactly(stream, size):
    chunks, remaining = [], size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream):
    """Read one message from a binary stream; raises EOFError at end of stream."""
    (size,) = HEADER.unpack(_read_exactly(stream, HEADER.size))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {size} bytes is larger than the limit of {MAX_MESSAGE_BYTES}")
    payload = _read_exactly(stream, size)
    import torch

    try:
        return torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as error:  # weights_only refuses anything but plain data
        raise ProtocolError(f"undecodable message: {error}") from None
