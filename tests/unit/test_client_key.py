"""Whom address limits count: the address the ingress wrote, never a header the client wrote."""

from starlette.requests import Request

from serve_app import client_key


def request(headers: dict[str, str], peer: str = "127.0.0.1") -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "client": (peer, 5000),
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})


def test_x_forwarded_for_is_never_the_client():
    assert client_key(request({"X-Forwarded-For": "203.0.113.9"}), "") == "127.0.0.1"
    assert client_key(request({"X-Forwarded-For": "203.0.113.9"}),
                      "x-ticketing-client-addr") == "127.0.0.1"


def test_the_header_the_hardened_ingress_writes_is_the_client():
    headers = {"X-Ticketing-Client-Addr": "198.51.100.4", "X-Forwarded-For": "203.0.113.9"}
    assert client_key(request(headers), "x-ticketing-client-addr") == "198.51.100.4"


def test_without_a_configured_header_a_client_sent_one_is_ignored():
    assert client_key(request({"X-Ticketing-Client-Addr": "198.51.100.4"}), "") == "127.0.0.1"
