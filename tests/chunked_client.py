"""A raw HTTP/1.1 client that streams a chunked upload while watching for the answer (requests sends it all first)."""

from __future__ import annotations

import select
import socket
import time

CHUNK = 64 * 1024
BOUNDARY = "xyz"
MULTIPART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
)


def stream_upload(port: int, headers: dict[str, str], total: int, path: str = "/v1/images") -> tuple[bytes, int]:
    """POST a chunked multipart body of ``total`` zero bytes, sending until the server answers or closes.

    Returns (the raw answer, body bytes the socket accepted before it).
    """
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Transfer-Encoding: chunked",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    frame = f"{CHUNK:x}\r\n".encode() + bytes(CHUNK) + b"\r\n"
    sent, answer = 0, b""
    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + f"{len(MULTIPART_HEAD):x}\r\n".encode() + MULTIPART_HEAD + b"\r\n")
        while time.monotonic() < deadline and not _complete(answer):
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 1)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                try:
                    sent += sock.send(frame) and CHUNK
                except (BrokenPipeError, ConnectionResetError):
                    answer += _rest(sock)  # the server answered and closed: its answer may still be buffered
                    break
    return answer, sent


def _rest(sock: socket.socket) -> bytes:
    try:
        sock.setblocking(False)
        return sock.recv(65536)
    except OSError:
        return b""


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    return bool(head) and body.rstrip().endswith(b"}")
