"""Answering one request of a local test server (the WeChat simulator, the fake WeCom robot).

Written once: both servers answer with a status, a body and its type, and both must survive
a client that gave up first (its read timeout beat a slow or hanging answer).
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def reply(handler: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str) -> None:
    """Send ``payload`` with ``status``; a client that already hung up closes the connection, nothing more."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
