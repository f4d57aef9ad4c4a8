"""The admin HTTP API, `kstub ctl` and `kstub serve --brokers/--admin-port`, from outside.

The request parser is tested without sockets (bytes in, request or refusal
out); the server with urllib and raw sockets, including the bad requests each
refusal code is for; `kstub ctl` and `kstub serve` as subprocesses.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from kstub.control_http_messages import MAX_BODY, MAX_HEAD, NEED_DATA, HttpError, HttpRequest, RequestReader

from multibroker import create_topic, meta, partition_state, wait_until
from support.raw import RawClient
from support.served import Served, free_ports

# --- the parser, without sockets ---------------------------------------------------------------


def parse(*chunks: bytes) -> HttpRequest | object:
    reader = RequestReader()
    result: HttpRequest | object = NEED_DATA
    for chunk in chunks:
        reader.receive_data(chunk)
        result = reader.next_request()
    return result


def test_parser_reads_requests_fed_in_pieces():
    req = parse(b"POST /v1/faults?x=1 HTTP/1.1\r\nHost: a\r\nContent-", b'Length: 7\r\n\r\n{"a"', b":1}")
    assert isinstance(req, HttpRequest)
    assert (req.method, req.path, req.query, req.headers["host"], req.json()) == (
        "POST",
        "/v1/faults",
        "x=1",
        "a",
        {"a": 1},
    )
    assert parse(b"GET /v1/cluster HTTP/1.1\r\n") is NEED_DATA
    assert parse(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab") is NEED_DATA
    bare = parse(b"POST /v1/clear HTTP/1.0\r\n\r\n")
    assert isinstance(bare, HttpRequest) and bare.body == b"" and bare.json() == {}, "no Content-Length: no body"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /v1/cluster\r\n\r\n", 400),
        (b"GET  /v1/cluster HTTP/1.1\r\n\r\n", 400),
        (b"GET v1/cluster HTTP/1.1\r\n\r\n", 400),
        (b"G(T /v1/cluster HTTP/1.1\r\n\r\n", 400),
        (b"GET /v1/cluster HTTP/2.0\r\n\r\n", 505),
        (b"GET /v1/cluster HTTX/1.1\r\n\r\n", 400),
        (b"GET /v1/cluster HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET /v1/cluster HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"GET /v1/cluster HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host (RFC 9112)
        (b"POST /v1/faults HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST /v1/faults HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /v1/faults HTTP/1.1\r\nHost: a\r\nContent-Length: " + str(MAX_BODY + 1).encode() + b"\r\n\r\n", 413),
        (b"GET /" + b"a" * MAX_HEAD + b" HTTP/1.1\r\nHost: a\r\n\r\n", 431),
        (b"GET /v1/cluster HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, 431),
    ],
)
def test_parser_refuses_bad_requests(data, status):
    with pytest.raises(HttpError) as err:
        parse(data)
    assert err.value.status == status


@pytest.mark.parametrize("body", [b"{", b"[1]", b"\xff"])
def test_bodies_must_be_json_objects(body):
    req = parse(
        b"POST /v1/faults HTTP/1.1\r\nHost: a\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    assert isinstance(req, HttpRequest)
    with pytest.raises(HttpError) as err:
        req.json()
    assert err.value.status == 400


# --- the server ------------------------------------------------------------------------------------


def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    raw_body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request as a script sends it: JSON (Content-Type: application/json) unless it is a GET."""
    data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    if method != "GET":
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def send_raw(url: str, data: bytes) -> bytes:
    host, port = re.match(r"http://(.*):(\d+)", url).groups()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


ADMIN = {"brokers": 3, "admin_port": 0, "config": {"replica.lag.time.max.ms": "500"}}


@pytest.mark.kstub(**ADMIN)
def test_routes(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "http", 1, 3)
    status, cluster = call(f"{url}/v1/cluster")
    assert status == 200 and cluster["controller_id"] == 0
    assert [(b["id"], b["state"], b["alive"], b["port"]) for b in cluster["brokers"]] == [
        (b.node_id, "running", True, b.port) for b in kc.brokers
    ]
    status, (p,) = call(f"{url}/v1/topics/http")
    assert (p["leader"], p["leader_epoch"], p["isr"], p["high_watermark"]) == (0, 0, [0, 1, 2], 0)
    assert call(f"{url}/v1/topics")[1] == [p]

    assert call(f"{url}/v1/brokers/2/pause-replication", "POST")[1]["brokers"][2]["replication"]["paused"] is True
    assert call(f"{url}/v1/brokers/2/resume-replication", "POST")[0] == 200
    status, cluster = call(f"{url}/v1/brokers/2/replication-delay", "POST", {"ms": 50})
    assert cluster["brokers"][2]["replication"]["delay_ms"] == 50
    assert call(f"{url}/v1/brokers/1/isolate", "POST")[1]["brokers"][1]["replication"]["isolated"] is True
    assert call(f"{url}/v1/brokers/1/heal", "POST")[0] == 200

    status, cluster = call(f"{url}/v1/brokers/0/stop", "POST")
    assert status == 200 and cluster["controller_id"] == 1
    assert [b["state"] for b in cluster["brokers"]] == ["stopped", "running", "running"]
    status, (p,) = call(f"{url}/v1/topics/http")
    assert (p["leader"], p["leader_epoch"], p["isr"]) == (1, 1, [1, 2])
    assert call(f"{url}/v1/brokers/0/start", "POST")[0] == 200
    wait_until(kc, lambda: kc.cluster.partition("http", 0).isr == [0, 1, 2])
    status, (p,) = call(f"{url}/v1/topics/http/partitions/0/move-leader", "POST", {"broker": 2})
    assert (status, p["leader"], p["leader_epoch"]) == (200, 2, 2)
    assert call(f"{url}/v1/leaders/elect-preferred", "POST") == (200, {"moved": ["http-0"]})
    status, cluster = call(f"{url}/v1/brokers/1/kill", "POST")
    assert cluster["brokers"][1]["state"] == "killed" and cluster["brokers"][1]["alive"] is True
    assert call(f"{url}/v1/brokers/1/start", "POST")[0] == 200
    assert call(f"{url}/v1/brokers/1/drop-connections", "POST")[0] == 200

    status, fault = call(
        f"{url}/v1/faults",
        "POST",
        {"type": "error", "api": "produce", "error": "NOT_ENOUGH_REPLICAS", "topic": "http", "partition": 0},
    )
    assert status == 201
    assert (fault["api"], fault["error_code"], fault["remaining"], fault["topic"]) == ("Produce", 19, 1, "http")
    _, delay = call(f"{url}/v1/faults", "POST", {"type": "delay", "api": None, "ms": 10, "count": None})
    assert delay["remaining"] is None and delay["api"] is None
    assert call(f"{url}/v1/faults", "POST", {"type": "drop-response", "api": 3, "broker": 0})[0] == 201
    assert call(f"{url}/v1/faults", "POST", {"type": "drop-request", "api": "fetch"})[0] == 201
    assert [f["type"] for f in call(f"{url}/v1/faults")[1]] == ["error", "delay", "drop-response", "drop-request"]
    assert [f["id"] for f in call(f"{url}/v1/faults/{delay['id']}", "DELETE")[1]] == [
        fault["id"],
        delay["id"] + 1,
        delay["id"] + 2,
    ]
    assert call(f"{url}/v1/faults", "DELETE") == (200, [])
    call(f"{url}/v1/brokers/2/pause-replication", "POST")
    assert call(f"{url}/v1/clear", "POST")[1]["brokers"][2]["replication"]["paused"] is False
    actions = [a["action"] for a in call(f"{url}/v1/actions")[1]]
    assert actions[:5] == ["pause-replication", "resume-replication", "replication-delay", "isolate", "heal"]
    assert "stop-broker" in actions and actions[-1] == "clear"


@pytest.mark.kstub(**ADMIN)
def test_refusals(kstub_cluster):
    url = kstub_cluster.admin_url
    cases = [
        ("GET", "/v1/nothing", None, 404, "no route"),
        ("DELETE", "/v1/cluster", None, 405, "allowed: GET"),
        ("POST", "/v1/brokers/9/stop", None, 404, "no broker 9"),
        ("POST", "/v1/brokers/0/explode", None, 404, "no broker action"),
        ("POST", "/v1/brokers/0/start", None, 409, "is running"),
        ("POST", "/v1/brokers/0/replication-delay", {}, 400, "'ms' is required"),
        ("POST", "/v1/brokers/0/replication-delay", {"ms": "5"}, 400, "integer"),
        ("POST", "/v1/brokers/0/replication-delay", {"ms": -5}, 400, ">= 0"),
        ("GET", "/v1/topics/none", None, 404, "no topic"),
        ("POST", "/v1/faults", {"type": "boom"}, 400, "'type' must be"),
        ("POST", "/v1/faults", {"type": "error", "api": "produce"}, 400, "needs 'api' and 'error'"),
        ("POST", "/v1/faults", {"type": "error", "api": "nope", "error": 6}, 400, "unknown API"),
        ("POST", "/v1/faults", {"type": "error", "api": "produce", "error": "NOPE"}, 400, "unknown error code"),
        ("POST", "/v1/faults", {"type": "error", "api": 22, "error": 6, "topic": "t"}, 400, "limited to a topic"),
        ("POST", "/v1/faults", {"type": "delay", "api": "produce"}, 400, "'ms' is required"),
        ("POST", "/v1/faults", {"type": "delay", "api": [1], "ms": 1}, 400, "'api' must be"),
        ("POST", "/v1/faults", {"type": "drop-request", "count": 0}, 400, "count must be"),
        ("POST", "/v1/faults", {"type": "drop-request", "broker": 7}, 404, "no broker 7"),
        ("DELETE", "/v1/faults/99", None, 404, "no fault 99"),
        ("POST", "/v1/topics/none/partitions/0/move-leader", {"broker": 1}, 404, "no partition"),
    ]
    for method, path, body, status, message in cases:
        got_status, got = call(url + path, method, body)
        assert (got_status, message in got["error"]) == (status, True), (method, path, got)
    assert call(url + "/v1/faults", "POST", raw_body=b"not json")[0] == 400


@pytest.mark.kstub(**ADMIN)
def test_bad_http_gets_a_status_and_the_server_carries_on(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "moves", 1, 2)
    assert call(f"{url}/v1/topics/moves/partitions/0/move-leader", "POST", {"broker": 0})[0] == 409
    for data, status in [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/cluster HTTP/3.0\r\n\r\n", 505),
        (b"POST /v1/faults HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        (b"GET /" + b"x" * (MAX_HEAD + 10), 431),
    ]:
        answer = send_raw(url, data)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    # a client that hangs up before finishing costs nothing
    host, port = re.match(r"http://(.*):(\d+)", url).groups()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"GET /v1/clus")
    assert call(f"{url}/v1/cluster")[0] == 200
    with RawClient(kc.bootstrap_servers) as c:
        assert meta(c).brokers, "the brokers too"


@pytest.mark.kstub(admin_port=0)
def test_one_connection_serves_requests_one_after_the_other(kstub_cluster):
    get = b"GET /v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /v1/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = send_raw(kstub_cluster.admin_url, get + get + last)  # pipelined; the server closes after the last
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3 and answer.endswith(b"[]\n")


@pytest.mark.kstub(admin_port=0)
def test_head_gets_a_get_s_headers_and_no_body(kstub_cluster):
    url = kstub_cluster.admin_url
    head = b"HEAD /v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    get = b"GET /v1/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer = send_raw(url, head + get)  # h11 refuses a body after HEAD: this once took the admin server down
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ") and rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"[]\n")
    assert call(f"{url}/v1/cluster")[0] == 200


@pytest.mark.kstub(admin_port=0)
def test_expect_100_continue_is_answered_before_the_body(kstub_cluster):
    host, port = re.match(r"http://(.*):(\d+)", kstub_cluster.admin_url).groups()
    body = b'{"type": "drop-request", "api": "fetch"}'
    head = (
        "POST /v1/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode())
        assert s.recv(65536).startswith(b"HTTP/1.1 100 "), "the server asks for the body"
        s.sendall(body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201 ")


# --- kstub ctl -------------------------------------------------------------------------------------------


def ctl(url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kstub", "ctl"] + (["--admin-url", url] if url else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.kstub(**ADMIN)
def test_ctl(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "ctl", 1, 3)
    out = ctl(url, "broker", "stop", "0")
    assert out.returncode == 0 and json.loads(out.stdout)["controller_id"] == 1
    assert partition_state(kc, "ctl")["leader"] == 1
    again = ctl(url, "broker", "stop", "0")
    assert again.returncode == 1 and "409" in again.stderr and "is stopped" in again.stderr
    assert ctl(url, "broker", "start", "0").returncode == 0
    for args in (["broker", "pause", "2"], ["broker", "lag", "2", "5"], ["broker", "isolate", "1"]):
        assert ctl(url, *args).returncode == 0
    status = json.loads(ctl(url, "status").stdout)
    assert [b["replication"] for b in status["brokers"]][1:] == [
        {"paused": False, "isolated": True, "delay_ms": 0},
        {"paused": True, "isolated": False, "delay_ms": 5},
    ]
    for args in (["broker", "resume", "2"], ["broker", "heal", "1"], ["broker", "drop-connections", "1"]):
        assert ctl(url, *args).returncode == 0
    out = ctl(
        url, "fault", "error", "produce", "NOT_LEADER_OR_FOLLOWER", "--count", "2", "--topic", "ctl", "--partition", "0"
    )
    fault = json.loads(out.stdout)
    assert (fault["error_code"], fault["remaining"], fault["topic"], fault["partition"]) == (6, 2, "ctl", 0)
    assert json.loads(ctl(url, "fault", "delay", "any", "5", "--forever", "--broker", "1").stdout)["remaining"] is None
    assert json.loads(ctl(url, "fault", "drop-response", "22").stdout)["api"] == "InitProducerId"
    assert json.loads(ctl(url, "fault", "drop-request", "fetch", "--count", "3").stdout)["remaining"] == 3
    assert len(json.loads(ctl(url, "fault", "list").stdout)) == 4
    assert ctl(url, "fault", "clear", str(fault["id"])).returncode == 0
    assert json.loads(ctl(url, "fault", "clear").stdout) == []
    wait_until(kc, lambda: kc.cluster.partition("ctl", 0).isr == [0, 1, 2])
    (p,) = json.loads(ctl(url, "partition", "move-leader", "ctl", "0", "2").stdout)
    assert (p["leader"], p["leader_epoch"]) == (2, 2)
    assert json.loads(ctl(url, "leaders", "elect-preferred").stdout) == {"moved": ["ctl-0"]}
    assert json.loads(ctl(url, "topics", "ctl").stdout)[0]["leader"] == 0
    assert ctl(url, "clear").returncode == 0
    assert json.loads(ctl(url, "actions").stdout)[-1]["action"] == "clear"
    bad = ctl(url, "fault", "error", "produce", "NOPE")
    assert bad.returncode == 1 and "unknown error code" in bad.stderr


def test_ctl_without_a_server():
    unreachable = ctl("http://127.0.0.1:9", "status")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "kstub", "ctl", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode == 2 and "--admin-url" in missing.stderr


# --- kstub serve ---------------------------------------------------------------------------------------


def test_serve_brokers_on_consecutive_ports_with_an_admin_port():
    base = free_ports(4)
    served = Served("--brokers", "3", "--port", str(base), "--admin-port", str(base + 3))
    try:
        ports = [int(m[1]) for m in served.find(r"broker \d listening on 127\.0\.0\.1:(\d+)")]
        assert ports == [base, base + 1, base + 2]
        assert served.find(r"admin API: (http://127\.0\.0\.1:\d+)")[0][1] == f"http://127.0.0.1:{base + 3}"
        with RawClient(f"127.0.0.1:{base + 2}") as c:
            body = meta(c)
        assert sorted((b.node_id, b.port) for b in body.brokers) == [(0, base), (1, base + 1), (2, base + 2)]
        assert call(f"http://127.0.0.1:{base + 3}/v1/cluster")[1]["controller_id"] == body.controller_id == 0
    finally:
        served.close()


def test_serve_ephemeral_ports_are_reported():
    served = Served("--brokers", "2", "--port", "0", "--admin-port", "0")
    try:
        (bootstrap,) = [m[1] for m in served.find(r"bootstrap servers (\S+)")]
        (admin,) = [m[1] for m in served.find(r"admin API: (\S+)")]
        with RawClient(bootstrap) as c:
            assert len(meta(c).brokers) == 2
        assert len(call(f"{admin}/v1/cluster")[1]["brokers"]) == 2
    finally:
        served.close()


@pytest.mark.kstub(**ADMIN)
def test_reassignment_routes(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "reassigned", 1, 1)
    leader = kc.control.describe_partitions("reassigned")[0]["leader"]
    target = (leader + 1) % 3
    assert call(f"{url}/v1/brokers/{target}/pause-replication", "POST")[0] == 200
    status, state = call(f"{url}/v1/topics/reassigned/partitions/0/reassign", "POST", {"replicas": [target]})
    assert status == 200 and (state["replicas"], state["adding"], state["removing"]) == (
        [target, leader],
        [target],
        [leader],
    )
    assert [(r["topic"], r["partition"]) for r in call(f"{url}/v1/reassignments")[1]] == [("reassigned", 0)]
    refused = call(f"{url}/v1/topics/reassigned/partitions/0/reassign", "POST", {"replicas": [9]})
    assert refused[0] == 409 and "INVALID_REPLICA_ASSIGNMENT" in refused[1]["error"]
    assert call(f"{url}/v1/topics/reassigned/partitions/0/reassign", "POST", {"replicas": ["x"]})[0] == 400
    assert call(f"{url}/v1/topics/none/partitions/0/reassign", "POST", {"replicas": [0]})[0] == 404
    status, state = call(f"{url}/v1/topics/reassigned/partitions/0/reassign", "POST", {"replicas": None})
    assert status == 200 and (state["replicas"], state["adding"]) == ([leader], [])
    assert call(f"{url}/v1/reassignments") == (200, [])
    again = call(f"{url}/v1/topics/reassigned/partitions/0/reassign", "POST", {})
    assert again[0] == 409 and "NO_REASSIGNMENT_IN_PROGRESS" in again[1]["error"]


@pytest.mark.kstub(**ADMIN)
def test_ctl_reassign(kstub_cluster):
    kc = kstub_cluster
    url = kc.admin_url
    create_topic(kc, "ctl-moves", 1, 1)
    leader = partition_state(kc, "ctl-moves")["leader"]
    target = (leader + 1) % 3
    assert ctl(url, "broker", "pause", str(target)).returncode == 0
    state = json.loads(ctl(url, "partition", "reassign", "ctl-moves", "0", str(target)).stdout)
    assert (state["replicas"], state["adding"]) == ([target, leader], [target])
    assert [r["topic"] for r in json.loads(ctl(url, "partition", "reassignments").stdout)] == ["ctl-moves"]
    state = json.loads(ctl(url, "partition", "reassign", "ctl-moves", "0", "cancel").stdout)
    assert (state["replicas"], state["adding"]) == ([leader], [])
