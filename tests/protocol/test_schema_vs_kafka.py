"""Every declaration in kstub.protocol, checked field by field against Kafka's JSON.

For each API in `ALL`, each side (request, response) and each version kstub
implements, the fields present in that version must be the ones Kafka's
schema has, in Kafka's order, with the same type, nullability, tag and tagged
versions and (where Kafka gives one) the same default. One test case per
(API, side, version): a failure names all three, and its message names each
mismatching field by its path.

Two references. Kafka 3.9's schemas live outside the repository, at
``<repo>/../shared/kafka-protocol/messages``; without them those tests skip.
The newest Kafka's are read from the kafka-clients jar pinned by
compat/kafka/pom.xml (``common/message/*.json`` inside it; Maven fetches it
with the other real-Kafka jars): each version kstub declares is checked
against Kafka 4.x's schema where Kafka 4.x still has that version, and
against 3.9's where 4.x removed it (kstub keeps serving those for older
clients). Without the jar (no Maven, no network) those tests skip, and fail
under CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kstub.compat import realkafka
from kstub.protocol.headers import REQUEST_HEADER, RESPONSE_HEADER
from kstub.protocol.messages import ALL
from kstub.protocol.schema import Api, Field

from support.schemas import (
    MESSAGES,
    RENAMED_SINCE_3_9,
    _all_names,
    _common,
    compare_fields,
    has,
    load,
    load4,
    name_in_3_9,
    snake,
    vrange,
)


def test_snake() -> None:
    assert snake("ThrottleTimeMs") == "throttle_time_ms"
    assert snake("timeoutMs") == "timeout_ms"
    assert snake("IsrNodes") == "isr_nodes"
    assert snake("ZkMigrationReady") == "zk_migration_ready"


CASES = [
    pytest.param(api, side, v, id=f"{api.name}-{side}-v{v}")
    for api in ALL.values()
    for side in ("request", "response")
    for v in range(api.min_version, api.max_version + 1)
]


#: fields Kafka renamed after 3.9 (same wire format): kstub declares them by the 4.x name
RENAMED_AFTER_39 = {"TxnOffsetCommitRequest": {"GenerationId": "GenerationIdOrMemberEpoch"}}


def _renamed(schema: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return schema | {"fields": [f | {"name": names.get(f["name"], f["name"])} for f in schema["fields"]]}


@pytest.mark.parametrize(("api", "side", "version"), CASES)
def test_fields_match_kafka(api: Api, side: str, version: int) -> None:
    schema = load(f"{api.name}{side.capitalize()}")
    # newer than 3.9, or renamed since (fields included): Kafka 4.x's schema is the reference
    if version not in vrange(schema["validVersions"]) or api.name in RENAMED_SINCE_3_9:
        schema = load4(f"{api.name}{side.capitalize()}")
    elif f"{api.name}{side.capitalize()}" in RENAMED_AFTER_39:
        schema = _renamed(schema, RENAMED_AFTER_39[f"{api.name}{side.capitalize()}"])
    fields = api.request if side == "request" else api.response
    errors: list[str] = []
    compare_fields(
        fields,
        schema["fields"],
        version,
        api.is_flexible(version),
        f"{api.name}{side.capitalize()} v{version}",
        _common(schema),
        errors,
    )
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("api", list(ALL.values()), ids=lambda a: f"{a.key}-{a.name}")
@pytest.mark.parametrize("side", ["request", "response"])
def test_versions_match_kafka(api: Api, side: str) -> None:
    schema = load(f"{api.name}{side.capitalize()}")
    assert schema["apiKey"] == api.key
    assert schema["type"] == side
    valid = vrange(schema["validVersions"])
    assert valid is not None
    assert api.min_version in valid, f"v{api.min_version} outside Kafka's validVersions {valid}"
    if api.max_version not in valid:  # a version newer than 3.9: Kafka 4.x must have it
        valid = vrange(load4(f"{api.name}{side.capitalize()}")["validVersions"])
    assert api.max_version in valid, f"v{api.max_version} outside Kafka's validVersions {valid}"
    flex = vrange(schema["flexibleVersions"])
    assert flex is None or flex.high is None, "Kafka's flexible versions are always open-ended"
    assert api.flexible_from == (flex.low if flex is not None else None), (
        f"flexible_from={api.flexible_from}, Kafka flexibleVersions={schema['flexibleVersions']!r}"
    )
    for v in range(api.min_version, api.max_version + 1):
        assert api.is_flexible(v) == (flex is not None and v in flex), f"v{v}"


@pytest.mark.parametrize("api", list(ALL.values()), ids=lambda a: f"{a.key}-{a.name}")
@pytest.mark.parametrize("side", ["request", "response"])
def test_no_dead_declarations(api: Api, side: str) -> None:
    """Every declared field exists in at least one implemented version."""
    fields = api.request if side == "request" else api.response
    versions = range(api.min_version, api.max_version + 1)
    dead = [
        path
        for path, f in _all_names(fields, api.name)
        if f.version_range is None or not any(v in f.version_range for v in versions)
    ]
    assert not dead, f"declared fields outside v{api.min_version}-{api.max_version}: {dead}"


def test_every_api_is_in_the_kafka_schemas() -> None:
    names = {p.stem for p in MESSAGES.glob("*.json")} if MESSAGES.is_dir() else set()
    if not names:
        pytest.skip(f"Kafka's message schemas are not at {MESSAGES}")
    for api in ALL.values():
        assert name_in_3_9(f"{api.name}Request") in names
        assert name_in_3_9(f"{api.name}Response") in names
        assert load(f"{api.name}Request")["apiKey"] == api.key


@pytest.mark.parametrize("version", [0, 1, 2])
def test_request_header_matches_kafka(version: int) -> None:
    schema = load("RequestHeader")
    assert version in vrange(schema["validVersions"])
    flexible = has(schema["flexibleVersions"], version)
    assert flexible == (version >= 2)
    errors: list[str] = []
    compare_fields(REQUEST_HEADER.fields, schema["fields"], version, flexible, f"RequestHeader v{version}", {}, errors)
    assert not errors, "\n".join(errors)
    client_id = next(f for f in REQUEST_HEADER.fields if f.name == "client_id")
    assert client_id.classic, 'ClientId is "flexibleVersions": "none" in Kafka'


@pytest.mark.parametrize("version", [0, 1])
def test_response_header_matches_kafka(version: int) -> None:
    schema = load("ResponseHeader")
    assert version in vrange(schema["validVersions"])
    flexible = has(schema["flexibleVersions"], version)
    assert flexible == (version >= 1)
    errors: list[str] = []
    compare_fields(
        RESPONSE_HEADER.fields, schema["fields"], version, flexible, f"ResponseHeader v{version}", {}, errors
    )
    assert not errors, "\n".join(errors)


# --- Kafka 4.x (the pinned kafka-clients jar) -------------------------------------


def _reference(name: str, version: int) -> tuple[dict[str, Any], str]:
    """The schema `version` is checked against: Kafka 4.x's if it has the version, else 3.9's (a removed one)."""
    schema = load4(name)
    if version in vrange(schema["validVersions"]):
        return schema, f"Kafka {realkafka.KAFKA_VERSION}"
    old = load(name)
    assert version in vrange(old["validVersions"]), (
        f"{name} v{version} is neither in Kafka {realkafka.KAFKA_VERSION}'s validVersions "
        f"{schema['validVersions']!r} nor in 3.9's {old['validVersions']!r}"
    )
    return old, "Kafka 3.9 (removed since)"


@pytest.mark.parametrize(("api", "side", "version"), CASES)
def test_fields_match_kafka4(api: Api, side: str, version: int) -> None:
    name = f"{api.name}{side.capitalize()}"
    schema, which = _reference(name, version)
    fields = api.request if side == "request" else api.response
    errors: list[str] = []
    compare_fields(
        fields, schema["fields"], version, api.is_flexible(version), f"{name} v{version}", _common(schema), errors
    )
    assert not errors, f"against {which}:\n" + "\n".join(errors)


@pytest.mark.parametrize("api", list(ALL.values()), ids=lambda a: f"{a.key}-{a.name}")
@pytest.mark.parametrize("side", ["request", "response"])
def test_versions_match_kafka4(api: Api, side: str) -> None:
    """kstub's versions are Kafka 4.x's, or a subset, or versions 4.x removed (then 3.9 had them)."""
    schema = load4(f"{api.name}{side.capitalize()}")
    assert (schema["apiKey"], schema["type"]) == (api.key, side)
    valid = vrange(schema["validVersions"])
    assert valid is not None
    assert api.max_version in valid, f"v{api.max_version} outside Kafka 4.x's validVersions {valid}"
    for v in range(api.min_version, api.max_version + 1):
        _reference(f"{api.name}{side.capitalize()}", v)
    flex = vrange(schema["flexibleVersions"])
    assert api.flexible_from == (flex.low if flex is not None else None), (
        f"flexible_from={api.flexible_from}, Kafka 4.x flexibleVersions={schema['flexibleVersions']!r}"
    )


@pytest.mark.parametrize(
    ("header", "fields", "versions"),
    [
        ("RequestHeader", REQUEST_HEADER.fields, [0, 1, 2]),
        ("ResponseHeader", RESPONSE_HEADER.fields, [0, 1]),
    ],
)
def test_headers_match_kafka4(header: str, fields: Sequence[Field], versions: list[int]) -> None:
    schema = load4(header)
    errors: list[str] = []
    for v in versions:
        if v not in vrange(schema["validVersions"]):
            continue  # a header version 4.x dropped: the 3.9 check covers it
        flexible = has(schema["flexibleVersions"], v)
        compare_fields(fields, schema["fields"], v, flexible, f"{header} v{v}", {}, errors)
    assert not errors, "\n".join(errors)
