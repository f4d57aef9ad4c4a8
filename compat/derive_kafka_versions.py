"""Derive, from Apache Kafka's own release artifacts, what each release's broker advertised.

    python -m kstub.compat.derive_kafka_versions [--check]

For each release kstub can pose as (`kstub serve --kafka-version X`), Maven
fetches that release's ``kafka-clients`` jar (and ``kafka-server-common`` from
3.3 on) from Maven Central. The facts read from them:

- ``common/message/*Request.json``: each API's key, its valid versions, the
  listeners that serve it and whether its latest version is unstable (not
  advertised by a broker with default settings). A release before 3.3 is posed
  as a ZooKeeper-based cluster (KRaft was not production-ready): the APIs of
  the ``zkBroker`` listener; from 3.3, as a KRaft cluster: those of ``broker``.
- From 4.0, Produce versions 0-2 stay in the ApiVersions answer although the
  broker refuses them (KAFKA-18659, stated in ProduceRequest.json's own
  comment): advertised from 0, accepted from the JSON's minimum.
- GetTelemetrySubscriptions and PushTelemetry (3.7+) are accepted but not
  advertised: a broker advertises them only with a client-telemetry metrics
  reporter configured (Kafka's ApiVersionManager).
- The feature levels (KIP-584) from ``kafka-server-common``, by
  compat/kafka/FeatureProbe.java: the range each production feature supports
  and the level a new cluster finalizes. ZooKeeper releases report none.

The result is written to kstub/kafka_versions.json, package data read by
kstub/kafka_versions.py (``--check``: compared with it instead, failing if it
differs). The generated file is committed: serving needs neither Maven nor Java.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROBE = HERE / "kafka" / "FeatureProbe.java"
OUTPUT = Path(importlib.util.find_spec("kstub").origin).parent / "kafka_versions.json"  # type: ignore[arg-type]
M2 = Path.home() / ".m2" / "repository" / "org" / "apache" / "kafka"

#: the releases kstub can pose as: their name (major.minor) and the artifact read (the last patch release)
RELEASES: dict[str, str] = {
    "2.8": "2.8.2",
    "3.0": "3.0.2",
    "3.1": "3.1.2",
    "3.2": "3.2.3",
    "3.3": "3.3.2",
    "3.4": "3.4.1",
    "3.5": "3.5.2",
    "3.6": "3.6.2",
    "3.7": "3.7.2",
    "3.8": "3.8.1",
    "3.9": "3.9.1",
    "4.0": "4.0.0",
    "4.1": "4.1.0",
    "4.2": "4.2.0",
    "4.3": "4.3.0",
    "4.4": "4.4.0",
}

#: GetTelemetrySubscriptions and PushTelemetry (KIP-714): served, but advertised only by a broker with a
#: metrics reporter that receives client telemetry, which a broker with default settings has not
TELEMETRY = (71, 72)
#: the first release posed as a KRaft cluster
FIRST_KRAFT = (3, 3)
#: the first release whose broker refuses the Produce versions it still advertises
PRODUCE_ADVERTISED_FROM_ZERO = (4, 0)


def _key(release: str) -> tuple[int, int]:
    major, minor = release.split(".")
    return int(major), int(minor)


def _jar(artifact: str, version: str) -> Path:
    path = M2 / artifact / version / f"{artifact}-{version}.jar"
    if not path.exists():
        cmd = [
            "mvn",
            "-q",
            "-B",
            "dependency:get",
            "-Dtransitive=false",
            f"-Dartifact=org.apache.kafka:{artifact}:{version}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not path.exists():
            raise SystemExit(f"Maven could not fetch {artifact} {version}:\n{result.stdout}{result.stderr}")
    return path


def _json(text: str) -> dict[str, Any]:
    """Kafka's message JSON: JSON with // comments (outside strings)."""
    out, in_string, i = [], False, 0
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        out.append(c)
        i += 1
    # raw_decode: 2.8's DescribeProducersRequest.json has stray brackets after its object (Jackson reads past them)
    return json.JSONDecoder().raw_decode("".join(out).strip())[0]


def _range(spec: str) -> tuple[int, int]:
    low, _, high = spec.partition("-")
    return int(low), int(high or low)


def apis_of(release: str, clients_jar: Path) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """(advertised, accepted) version ranges by API key, of the release's broker with default settings."""
    import zipfile

    listener = "broker" if _key(release) >= FIRST_KRAFT else "zkBroker"
    advertised: dict[int, tuple[int, int]] = {}
    with zipfile.ZipFile(clients_jar) as jar:
        for name in jar.namelist():
            if not (name.startswith("common/message/") and name.endswith("Request.json")):
                continue
            spec = _json(jar.read(name).decode())
            if listener not in spec.get("listeners", []):
                continue
            low, high = _range(spec["validVersions"])
            if spec.get("latestVersionUnstable"):
                high -= 1
            if high >= low:
                advertised[spec["apiKey"]] = (low, high)
    accepted = dict(advertised)
    for key in TELEMETRY:
        advertised.pop(key, None)
    if _key(release) >= PRODUCE_ADVERTISED_FROM_ZERO and 0 in advertised:
        advertised[0] = (0, advertised[0][1])
    return dict(sorted(advertised.items())), dict(sorted(accepted.items()))


def features_of(release: str, version: str, clients_jar: Path) -> list[tuple[str, int, int, int]]:
    """(name, min, max, finalized level) of each production feature; none for a ZooKeeper release."""
    if _key(release) < FIRST_KRAFT:
        return []
    server_common = _jar("kafka-server-common", version)
    cp = f"{server_common}:{clients_jar}"
    result = subprocess.run(["java", "-cp", cp, str(PROBE)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"FeatureProbe failed on {version}:\n{result.stdout}{result.stderr}")
    features = []
    for line in result.stdout.split("\n"):
        if line.strip():
            name, low, high, level = line.split()
            features.append((name, int(low), int(high), max(int(level), 0)))
    return features


def derive() -> dict[str, dict[str, Any]]:
    table = {}
    for release, version in RELEASES.items():
        clients = _jar("kafka-clients", version)
        advertised, accepted = apis_of(release, clients)
        table[release] = {
            "artifact": version,
            "kraft": _key(release) >= FIRST_KRAFT,
            "advertised": advertised,
            "accepted": accepted,
            "features": features_of(release, version, clients),
        }
        print(f"derive: Kafka {version}: {len(advertised)} APIs", file=sys.stderr)
    return table


def render(table: dict[str, dict[str, Any]]) -> str:
    """The table as compact JSON: one line per release's field (API keys as strings, ranges as lists)."""

    def dump(value: Any) -> str:
        return json.dumps(value, separators=(", ", ": "))

    releases = []
    for release, entry in table.items():
        fields = [f"    {dump(name)}: {dump(entry[name])}" for name in ("artifact", "kraft", "advertised", "accepted")]
        fields.append(f'    "features": {dump(entry["features"])}')
        releases.append(f"  {dump(release)}: {{\n" + ",\n".join(fields) + "\n  }")
    return "{\n" + ",\n".join(releases) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed table instead of writing")
    args = parser.parse_args(argv)
    table = derive()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != render(table):
            print(f"{OUTPUT} differs from what the releases' jars say: regenerate it", file=sys.stderr)
            return 1
        print(f"{OUTPUT} matches the releases' jars")
        return 0
    OUTPUT.write_text(render(table))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
