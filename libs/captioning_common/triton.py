"""Triton Inference Server clients (gRPC, gRPC asyncio, HTTP) built from settings."""

from __future__ import annotations

import time
from typing import Literal

from captioning_common.settings import TritonSettings

Protocol = Literal["grpc", "grpc-aio", "http"]


def triton_client(settings: TritonSettings, protocol: Protocol = "grpc"):
    """An InferenceServerClient for the configured Triton endpoint."""
    if protocol == "grpc":
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(settings.grpc_url)
    if protocol == "grpc-aio":
        import tritonclient.grpc.aio as grpcaio

        return grpcaio.InferenceServerClient(settings.grpc_url)
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
