"""The admin HTTP API is a control plane no web page can reach (issue 14, the admin part).

A browser on another site can send "simple" requests (a form POST of
text/plain, with its own Origin) to any address, loopback included, and a
DNS-rebinding page can even send them with its own name in ``Host``. Each
case here is such a request aimed at a broker; each must be refused and leave
the broker running. Then the token, and where the admin server listens.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kstub import Cluster
from kstub.control_http_access import Access

from support.served import Served, free_ports


def raw(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send one request with exactly these headers (Host included); status and JSON answer."""
    host, port = re.match(r"http://(.*):(\d+)", url).groups()
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall("\r\n".join(lines).encode("latin-1") + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


def broker_states(url: str, token: str | None = None) -> list[str]:
    req = urllib.request.Request(f"{url}/v1/cluster")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return [b["state"] for b in json.load(resp)["brokers"]]


@pytest.fixture
def admin():
    with Cluster(brokers=2, admin_port=0) as cluster:
        yield cluster


def test_a_cross_site_plain_text_post_kills_no_broker(admin):
    url = admin.admin_url
    here = url.removeprefix("http://")
    kill = "/v1/brokers/1/kill"
    cases = [
        # what <form method=post enctype=text/plain action=http://127.0.0.1:P/...> on another site sends
        ({"Host": here, "Origin": "http://evil.example", "Content-Type": "text/plain"}, 403, "cross-origin"),
        # the same page with fetch(..., {mode: "no-cors"}) and a JSON-looking body
        ({"Host": here, "Origin": "https://evil.example", "Content-Type": "application/json"}, 403, "cross-origin"),
        ({"Host": here, "Origin": "null", "Content-Type": "application/json"}, 403, "cross-origin"),
        # a browser that sends no Origin: still a "simple" content type, refused
        ({"Host": here, "Content-Type": "text/plain"}, 415, "application/json"),
        ({"Host": here, "Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        ({"Host": here, "Content-Type": "multipart/form-data; boundary=x"}, 415, "application/json"),
        ({"Host": here}, 415, "application/json"),
        # DNS rebinding: evil.example now resolves to 127.0.0.1; the page is same-origin with itself
        (
            {"Host": "evil.example:" + here.split(":")[1], "Origin": "http://evil.example:" + here.split(":")[1]},
            403,
            "DNS rebinding",
        ),
        ({"Host": "evil.example", "Content-Type": "application/json"}, 403, "DNS rebinding"),
    ]
    for headers, status, message in cases:
        got, body = raw(url, "POST", kill, headers, b'{"x": 1}')
        assert (got, message in body.get("error", "")) == (status, True), (headers, got, body)
    assert broker_states(url) == ["running", "running"]
    # GETs with a foreign Host or Origin are refused too (a rebinding page would read the answer)
    assert raw(url, "GET", "/v1/cluster", {"Host": "evil.example"})[0] == 403
    assert raw(url, "GET", "/v1/cluster", {"Host": here, "Origin": "http://evil.example"})[0] == 403
    # The admin server's own origin, and loopback names, are served.
    port = here.split(":")[1]
    for host in (here, f"localhost:{port}", f"[::1]:{port}", "127.0.0.2"):
        assert raw(url, "GET", "/v1/cluster", {"Host": host})[0] == 200, host
    same_origin = {"Host": here, "Origin": f"http://{here}", "Content-Type": "application/json; charset=utf-8"}
    assert raw(url, "POST", kill, same_origin)[0] == 200
    assert broker_states(url) == ["running", "killed"]


def _ctl(url: str, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "kstub",
        "ctl",
        "--admin-url",
        url,
        *(["--admin-token", token] if token else []),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_a_token_is_required_when_set():
    with Cluster(brokers=2, admin_port=0, admin_token="s3cret") as cluster:
        url = cluster.admin_url
        assert cluster.admin_token == "s3cret"
        here = url.removeprefix("http://")
        kill = {"Host": here, "Content-Type": "application/json"}
        for given in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret"},
            {"Authorization": "Bearer sécret"},
        ):
            status, body = raw(url, "POST", "/v1/brokers/1/kill", {**kill, **given})
            assert status == 401 and "token" in body["error"], (given, body)
            assert raw(url, "GET", "/v1/cluster", {"Host": here, **given})[0] == 401
        assert broker_states(url, "s3cret") == ["running", "running"]
        refused = _ctl(url, "status")
        assert refused.returncode == 1 and "401" in refused.stderr
        assert json.loads(_ctl(url, "broker", "stop", "1", token="s3cret").stdout)["brokers"][1]["state"] == "stopped"
        assert raw(url, "POST", "/v1/brokers/1/start", {**kill, "Authorization": "Bearer s3cret"})[0] == 200
        assert broker_states(url, "s3cret") == ["running", "running"]


def test_no_token_on_loopback_unless_asked(admin):
    assert admin.admin_token is None
    assert broker_states(admin.admin_url) == ["running", "running"]


def _this_machine_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses listening on `port`, from /proc/net/tcp (Linux)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc/net/tcp (Linux)")
def test_the_admin_port_stays_on_loopback_when_brokers_listen_everywhere():
    base = free_ports(2)
    served = Served("--host", "0.0.0.0", "--port", str(base), "--admin-port", str(base + 1))
    try:
        assert served.find(r"admin API: (\S+)")[0][1] == f"http://127.0.0.1:{base + 1}"
        assert not served.find("admin API token")
        assert _listening_addresses(base) == {"0.0.0.0"}, "the broker listens everywhere"
        assert _listening_addresses(base + 1) == {"127.0.0.1"}, "the admin API on loopback only"
        address = _this_machine_address()
        if address is not None:
            with pytest.raises(OSError):
                socket.create_connection((address, base + 1), timeout=5).close()
    finally:
        served.close()


def test_beyond_loopback_a_token_is_generated_and_printed():
    base = free_ports(2)
    served = Served("--port", str(base), "--admin-port", str(base + 1), "--admin-host", "0.0.0.0")
    try:
        assert served.proc.stderr is not None
        while not served.find(r"admin API token: (\S+)"):
            line = served.proc.stderr.readline()
            assert line, served.lines
            served.lines.append(line)
        token = served.find(r"admin API token: (\S+)")[0][1]
        url = f"http://127.0.0.1:{base + 1}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            broker_states(url)
        assert refused.value.code == 401
        assert broker_states(url, token) == ["running"]
        address = _this_machine_address()
        if address is not None:  # reachable from the network now, by address, with the token
            assert (
                raw(f"http://{address}:{base + 1}", "GET", "/v1/cluster", {"Host": f"{address}:{base + 1}"})[0] == 401
            )
            assert broker_states(f"http://{address}:{base + 1}", token) == ["running"]
        status = _ctl(url, "status", token=token)
        assert status.returncode == 0, (status.returncode, status.stderr, served.lines[-20:])
        assert json.loads(status.stdout)["brokers"][0]["state"] == "running"
    finally:
        served.close()


# --- the rules alone, without sockets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "host", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "localhost", True),
        ("127.0.0.1", "LOCALHOST.", True),
        ("127.0.0.1", "[::1]", True),
        ("127.0.0.1", "127.9.9.9", True),
        ("127.0.0.1", "192.0.2.2", False),  # loopback-bound: reached by no other name
        ("127.0.0.1", "evil.example", False),
        ("127.0.0.1", "localhost.evil.example", False),
        ("192.0.2.2", "192.0.2.2", True),
        ("192.0.2.2", "198.51.100.7", False),
        ("kstub.internal", "kstub.internal", True),
        ("0.0.0.0", "198.51.100.7", True),  # everywhere: any address literal
        ("0.0.0.0", "[fd00::2]", True),
        ("0.0.0.0", "evil.example", False),  # but no DNS name but this machine's
        ("0.0.0.0", socket.gethostname(), True),
    ],
)
def test_host_rules(bind, host, allowed):
    assert Access(bind).host_allowed(host) is allowed


def test_generated_tokens_only_beyond_loopback():
    assert Access.for_bind("127.0.0.1").token is None
    assert Access.for_bind("localhost").token is None
    assert Access.for_bind("127.0.0.1", "given").token == "given"
    first, second = Access.for_bind("0.0.0.0").token, Access.for_bind("0.0.0.0").token
    assert first and second and first != second and len(first) >= 32
    assert Access.for_bind("::", "mine").token == "mine"
