"""The ingest paths' short way through uvicorn (gateway/ingest/protocol.py), over raw sockets.

A real `gateway serve` process: keep-alive, pipelining (answers in order, across the short path
and uvicorn's), HTTP/1.0, `Expect: 100-continue`, chunked bodies, a body over the limit, a client
that leaves before its answer, a request in flight at shutdown; and that the options `serve`
gives uvicorn leave the short way on.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.cli import parser, uvicorn_options
from tests.support.faults import stored_event_ids
from tests.support.gateways import free_port, start_gateway, unique, write_config
from tests.support.orders import order

pytestmark = pytest.mark.slow

LIMIT = 4096


def gateway_with(folder: Path, redis_url: str, settings: str) -> Iterator[tuple[int, str]]:
    """A real gateway with `settings` in its [gateway] table: its port and server key."""
    key = f"sk_{unique(folder.name)}"
    config = folder / "gateway.toml"
    config.write_text(
        f"[gateway]\n{settings}\n\n"
        f'[[tenants]]\nid = "{unique(folder.name)}"\nserver_keys = ["{key}"]\n'
    )
    port = free_port()
    log = folder / "gateway.log"
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config), log=log)
    try:
        yield port, key
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[int, str]]:
    folder = tmp_path_factory.mktemp("protocol")
    yield from gateway_with(folder, redis_url, f"max_body_bytes = {LIMIT}")


def event(email: str, **extra: object) -> bytes:
    body = {"eventTypeKey": "buttonClicked", "keyValue": email, "params": [], **extra}
    return json.dumps(body).encode()


def request(
    key: str,
    path: str,
    body: bytes = b"",
    *headers: str,
    method: str = "POST",
    version: str = "1.1",
) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: gateway", f"Authorization: Bearer {key}"]
    lines += headers
    if method == "POST" and not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int) -> bytes:
    """`body` in chunked transfer coding, `size` bytes a chunk, ending with the last chunk."""
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


Answer = tuple[int, dict[str, str], bytes]


def read_answers(sock: socket.socket, count: int) -> list[Answer]:
    buffer = b""
    answers: list[Answer] = []

    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(answers)} answers")
        return chunk

    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            buffer += more()
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            buffer += more()
        answers.append((int(status_line.split()[1]), headers, buffer[:length]))
        buffer = buffer[length:]
    assert buffer == b"", "more bytes than the answers announced"
    return answers


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def stored_events(port: int, key: str, email: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"http://127.0.0.1:{port}/v1/events",
        params={"contact": email, "limit": 100},
        headers={"authorization": f"Bearer {key}"},
    )
    return response.json()["events"] if response.status_code == 200 else []


def test_keep_alive_connection_answers_each_request_and_stores_it(server):
    port, key = server
    email = f"{unique('ka')}@example.com"
    with connect(port) as sock:
        for n in range(3):
            sock.sendall(request(key, "/v1/event", event(email, eventId=f"ka-{n}")))
            ((status, headers, body),) = read_answers(sock, 1)
            assert status == 200, body
            assert json.loads(body) == {"status": "accepted", "eventId": f"ka-{n}"}
            assert headers["content-type"] == "application/json" and headers["date"]
            assert "connection" not in headers and "server" not in headers
    assert sorted(e["eventId"] for e in stored_events(port, key, email)) == [
        "ka-0",
        "ka-1",
        "ka-2",
    ]


def test_pipelined_requests_are_answered_in_order(server):
    port, key = server
    email = f"{unique('pipe')}@example.com"
    batch = json.dumps([json.loads(event(email, eventId="p-2")), {"eventTypeKey": "x"}]).encode()
    with connect(port) as sock:
        sock.sendall(
            request(key, "/v1/event", event(email, eventId="p-1"))
            + request(key, "/healthz", method="GET")
            + request(key, "/v1/events", batch)
            + request(key, "/v1/event", event(email, eventId="p-3"))
            + request(key, "/v1/event", b"{not json")
        )
        answers = read_answers(sock, 5)
    assert [status for status, _, _ in answers] == [200, 200, 200, 200, 400]
    assert json.loads(answers[0][2])["eventId"] == "p-1"
    assert json.loads(answers[1][2]) == {"status": "ok"}
    many = json.loads(answers[2][2])
    assert many["accepted"] == 1 and many["failed"][0]["index"] == 1
    assert json.loads(answers[3][2])["eventId"] == "p-3"
    assert json.loads(answers[4][2])["field"] == "body"
    assert len(stored_events(port, key, email)) == 3


def test_http_1_0_and_connection_close_are_answered_then_closed(server):
    port, key = server
    email = f"{unique('close')}@example.com"
    for version, extra in (("1.0", ()), ("1.1", ("Connection: close",))):
        with connect(port) as sock:
            sock.sendall(request(key, "/v1/event", event(email), *extra, version=version))
            ((status, headers, _),) = read_answers(sock, 1)
            assert status == 200 and headers["connection"] == "close"
            assert sock.recv(10) == b""  # closed by the server
    assert len(stored_events(port, key, email)) == 2


def test_expect_100_continue_and_chunked_bodies(server):
    port, key = server
    email = f"{unique('chunk')}@example.com"
    body = event(email, eventId="continued")
    second = event(email, eventId="chunked")
    with connect(port) as sock:
        sock.sendall(request(key, "/v1/event", body, "Expect: 100-continue")[: -len(body)])
        ((status, _, _),) = read_answers(sock, 1)
        assert status == 100
        sock.sendall(body)
        ((status, _, answer),) = read_answers(sock, 1)
        assert status == 200, answer
        sock.sendall(
            request(key, "/v1/event", b"", "Transfer-Encoding: chunked", "Content-Type: text/plain")
            + chunked(second, 10)
        )
        ((status, _, answer),) = read_answers(sock, 1)
        assert status == 200 and json.loads(answer)["eventId"] == "chunked"
    assert len(stored_events(port, key, email)) == 2


def test_body_over_the_limit_gets_413_and_the_connection_goes_on(server):
    port, key = server
    email = f"{unique('big')}@example.com"
    big = event(email, padding="x" * LIMIT)
    with connect(port) as sock:
        for sent in (
            request(key, "/v1/event", big),
            request(key, "/v1/event", b"", "Transfer-Encoding: chunked") + chunked(big, 1000),
        ):
            sock.sendall(sent)
            ((status, _, answer),) = read_answers(sock, 1)
            assert status == 413 and json.loads(answer)["error"] == "body_too_large"
        sock.sendall(request(key, "/v1/event", event(email)))
        ((status, _, _),) = read_answers(sock, 1)
        assert status == 200
    assert len(stored_events(port, key, email)) == 1


def test_a_client_that_leaves_before_its_answer_has_its_event_stored(server):
    port, key = server
    email = f"{unique('gone')}@example.com"
    for n in range(5):
        with connect(port) as sock:
            sock.sendall(request(key, "/v1/event", event(email, eventId=f"gone-{n}")))
    deadline = time.monotonic() + 10
    while len(stored_events(port, key, email)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(stored_events(port, key, email)) == 5
    # and the server is still answering
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_a_request_in_flight_at_shutdown_is_answered(tmp_path: Path, redis_url: str):
    tenant = unique("stop")
    key = f"sk_{tenant}"
    config = write_config(tmp_path / "gateway.toml", [tenant])
    port = free_port()
    process = start_gateway(port, {"REDIS_URL": redis_url}, "--config", str(config))
    try:
        with connect(port) as sock:
            body = event(f"{tenant}@example.com", eventId="in-flight")
            sock.sendall(request(key, "/v1/event", body)[:-1])  # all but the body's last byte
            time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            # uvicorn closes its listening socket, then tells each connection to finish up
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except ConnectionRefusedError:
                    break
                time.sleep(0.02)
            sock.sendall(body[-1:])
            ((status, headers, _),) = read_answers(sock, 1)
            assert status == 200 and headers["connection"] == "close"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert stored_event_ids(redis_url, tenant) == {"in-flight"}


def test_slow_path_stays_for_other_methods(server):
    port, key = server
    with connect(port) as sock:
        sock.sendall(
            request(key, "/v1/event", method="GET") + request(key, "/v1/event", method="PUT")
        )
        (first, second) = read_answers(sock, 2)
    assert first[0] == 405 and second[0] == 405


def test_websocket_handshake_gets_an_ordinary_answer(server):
    # No WebSocket endpoint exists: the handshake is not taken up (no 101), the request is
    # answered as plain HTTP, and the connection stays usable for the next request.
    port, key = server
    handshake = (
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    )
    with connect(port) as sock:
        sock.sendall(request(key, "/healthz", b"", *handshake, method="GET"))
        ((status, headers, body),) = read_answers(sock, 1)
        assert status == 200 and "upgrade" not in headers, body
        sock.sendall(request(key, "/v1/event", event(f"{unique('ws')}@example.com")))
        ((status, _, body),) = read_answers(sock, 1)
        assert status == 200, body


H2C = ("Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAA")


def test_a_refused_h2c_upgrade_keeps_the_body(server):
    # Java's HttpClient and Spring's RestClient offer h2c on every POST; uvicorn with httptools
    # handed the app an empty body (a 400 for valid JSON). Bodies of either framing, the head
    # and the body in separate packets, a request pipelined behind, the connection kept.
    port, key = server
    email = f"{unique('h2c')}@example.com"
    chunked_head = request(key, "/v1/event", b"", *H2C, "Transfer-Encoding: chunked")
    with connect(port) as sock:
        sock.sendall(request(key, "/v1/event", event(email, eventId="h-1"), *H2C))
        sock.sendall(chunked_head)
        time.sleep(0.1)  # the head alone first, as Ktor writes it
        sock.sendall(chunked(event(email, eventId="h-2"), 16))
        sock.sendall(
            request(key, "/v1/event", event(email, eventId="h-3"), *H2C)
            + request(key, "/v1/event", event(email, eventId="h-4"))
        )
        answers = read_answers(sock, 4)
        orders = json.dumps({"orders": [order(unique("h2c"), email=email)]})
        sock.sendall(
            request(key, "/healthz", b"", *H2C, method="GET")
            + request(key, "/v1/orders", orders.encode(), *H2C)
        )
        (health, ordered) = read_answers(sock, 2)
    assert health[0] == 200
    assert (ordered[0], json.loads(ordered[2])) == (200, {"failedOrders": []})
    assert [(s, json.loads(body)["eventId"]) for s, _, body in answers] == [
        (200, "h-1"),
        (200, "h-2"),
        (200, "h-3"),
        (200, "h-4"),
    ]
    stored = sorted(e["eventId"] for e in stored_events(port, key, email))
    assert stored == ["h-1", "h-2", "h-3", "h-4"]


def test_a_refused_upgrade_with_a_malformed_body_gets_a_400(server):
    port, key = server
    with connect(port) as sock:
        head = request(key, "/v1/event", b"", *H2C, "Transfer-Encoding: chunked")
        sock.sendall(head + b"zz\r\nnot a chunk\r\n")
        ((status, _, _),) = read_answers(sock, 1)
    assert status == 400


async def test_gateway_serve_answers_the_ingest_paths_itself(tmp_path, monkeypatch):
    # The short way turns itself off when uvicorn wraps the app (e.g. proxy headers, trace logs):
    # every test above would still pass, only slower. This checks what `serve` configures.
    config_file = tmp_path / "gateway.toml"
    config_file.write_text('[[tenants]]\nid = "short"\nserver_keys = ["sk_short_test"]\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(config_file))
    config = uvicorn.Config(**uvicorn_options(parser().parse_args(["serve"])))
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
    assert protocol.ingest is not None and protocol.ingest is config.loaded_app.ingest


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[int, str]]:
    """A gateway with the default body limit and a request timeout of one second."""
    folder = tmp_path_factory.mktemp("guarded")
    yield from gateway_with(folder, redis_url, "request_timeout_seconds = 1")


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_request_head_over_64_kib_is_431_and_closed(guarded):
    """httptools and uvicorn join a head's pieces with `+=`: a 1 GiB header took the process
    minutes of CPU and GBs of memory, and stalled every other connection."""
    port, key = guarded
    padding = "a" * 8000
    fits = request(
        key, "/v1/event", event("head@example.com"), *[f"X-Pad-{i}: {padding}" for i in range(7)]
    )
    with connect(port) as sock:
        for start in range(0, len(fits), 1000):  # a head of 56 KB, in many pieces
            sock.sendall(fits[start : start + 1000])
        ((status, _, _),) = read_answers(sock, 1)
        assert status == 200
    for head, piece in (
        (b"POST /v1/event HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 70_000, 4096),
        (b"GET /healthz?" + b"a" * 70_000, 4096),
        # read whole in one go, so measured when the head is complete (a 65 KiB header got a 200)
        (b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 0),
        (b"GET /healthz?" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: gateway\r\n\r\n", 0),
    ):
        with connect(port) as sock:
            for start in range(0, len(head), piece or len(head)):
                sock.sendall(head[start : start + (piece or len(head))])
            ((status, headers, answer),) = read_answers(sock, 1)
            assert (status, json.loads(answer)["error"]) == (431, "head_too_large")
            assert headers["connection"] == "close" and closed(sock)
    with connect(port) as sock:  # a malformed request gets JSON too (was uvicorn's plain text)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost gateway\r\n\r\n")
        ((status, headers, answer),) = read_answers(sock, 1)
        assert (status, json.loads(answer)["error"]) == (400, "invalid_request")


def test_a_request_that_does_not_arrive_in_time_is_408(guarded):
    port, key = guarded
    partial = request(key, "/v1/event", event("slow@example.com"))[:-10]
    with connect(port) as sock:
        started = time.monotonic()
        sock.sendall(partial)  # the body's last 10 bytes never come
        ((status, _, answer),) = read_answers(sock, 1)
        waited = time.monotonic() - started
        assert (status, json.loads(answer)["error"]) == (408, "request_timeout")
        assert closed(sock) and 0.9 < waited < 5
    with connect(port) as sock:  # a connection that never sends a request
        started = time.monotonic()
        assert closed(sock) and 0.9 < time.monotonic() - started < 5
    with connect(port) as sock:  # one that keeps sending whole requests is not cut off
        for _ in range(3):
            sock.sendall(request(key, "/v1/event", event("steady@example.com")))
            ((status, _, _),) = read_answers(sock, 1)
            assert status == 200
            time.sleep(0.6)


def test_a_large_body_without_a_known_key_is_refused_before_it_is_buffered(guarded):
    port, _ = guarded
    head = request("sk_nobody", "/v1/event", b"")  # Content-Length: 0 ...
    head = head.replace(b"Content-Length: 0", b"Content-Length: 900000")
    with connect(port) as sock:
        sock.sendall(head + b" " * 100_000)  # ... of 900 KB, under the body limit
        ((status, _, answer),) = read_answers(sock, 1)  # answered before the rest is sent
        assert (status, json.loads(answer)["error"]) == (401, "unauthorized")


def test_of_a_repeated_authorization_header_the_first_counts_everywhere(guarded):
    """The ingest paths took the last, the read routes the first."""
    port, key = guarded
    good, bad = f"Authorization: Bearer {key}", "Authorization: Bearer sk_nobody"
    for first, second, status in ((good, bad, 200), (bad, good, 401)):
        lines = f"GET /v1/events?limit=1 HTTP/1.1\r\nHost: gateway\r\n{first}\r\n{second}\r\n\r\n"
        body = event("twice@example.com")
        post = (
            f"POST /v1/event HTTP/1.1\r\nHost: gateway\r\n{first}\r\n{second}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        with connect(port) as sock:
            sock.sendall(post + lines.encode())
            assert [answer[0] for answer in read_answers(sock, 2)] == [status, status]
