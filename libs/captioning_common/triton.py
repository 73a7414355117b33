"""Triton Inference Server clients (gRPC, gRPC asyncio, HTTP) built from settings."""

from __future__ import annotations

import time
from typing import Literal

from captioning_common.settings import TritonSettings

Protocol = Literal["grpc", "grpc-aio", "http"]
# gRPC backs off up to 120 s between reconnects to a server that was down; a Triton that
# restarts in 20 s would then look unready, and get no requests, for up to two more minutes.
MAX_RECONNECT_BACKOFF_MS = 2000


def _grpc_channel_args() -> list[tuple[str, int]]:
    """tritonclient's default channel options (they are replaced, not merged) with a short reconnect backoff."""
    from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE, KeepAliveOptions

    keepalive = KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]


def triton_client(settings: TritonSettings, protocol: Protocol = "grpc"):
    """An InferenceServerClient for the configured Triton endpoint (gRPC clients reconnect within 2 s of a restart)."""
    if protocol == "grpc":
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(settings.grpc_url, channel_args=_grpc_channel_args())
    if protocol == "grpc-aio":
        import tritonclient.grpc.aio as grpcaio

        return grpcaio.InferenceServerClient(settings.grpc_url, channel_args=_grpc_channel_args())
    if protocol == "http":
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(settings.http_url, network_timeout=settings.request_timeout_s)
    raise ValueError(f"unknown Triton protocol {protocol!r}: use grpc, grpc-aio or http")


def wait_until_ready(client, model: str | None = None, timeout_s: float = 60.0) -> None:
    """Block until the server (and ``model`` when given) reports ready; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if client.is_server_ready() and (model is None or client.is_model_ready(model)):
                return
        except Exception as exc:  # connection refused while the server starts
            last_error = exc
        time.sleep(0.25)
    raise TimeoutError(f"Triton not ready after {timeout_s:.0f}s (model={model}): {last_error}")
