"""Kafka's message JSON (3.9's from ../shared, 4.x's from the pinned kafka-clients jar) and the field-by-field
comparison of kstub's declarations with it, shared by the schema checks."""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kstub.compat import realkafka
from kstub.protocol.schema import Field, Struct, VersionRange

from support.external import unavailable

REPO = Path(__file__).resolve().parents[2]  # tests/support/ -> the repository
MESSAGES = REPO.parent / "shared" / "kafka-protocol" / "messages"

PRIMITIVES = {
    "int8",
    "int16",
    "int32",
    "int64",
    "uint16",
    "uint32",
    "float64",
    "bool",
    "string",
    "bytes",
    "records",
    "uuid",
}
INTEGERS = {"int8", "int16", "int32", "int64", "uint16", "uint32"}


def snake(name: str) -> str:
    """Kafka's CamelCase (or camelCase) field name as kstub spells it."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


#: APIs Kafka 4.x renamed: their name in Kafka 3.9's schemas
RENAMED_SINCE_3_9 = {"ListConfigResources": "ListClientMetricsResources"}


def name_in_3_9(name: str) -> str:
    """`name` (an API's, or its Request/Response message's) as Kafka 3.9 spelled it."""
    for new, old in RENAMED_SINCE_3_9.items():
        if name.startswith(new):
            return old + name[len(new) :]
    return name


@cache
def load(name: str) -> dict[str, Any]:
    path = MESSAGES / f"{name_in_3_9(name)}.json"
    if not MESSAGES.is_dir():
        pytest.skip(f"Kafka's message schemas are not at {MESSAGES} (shared reference data absent)")
    if not path.is_file():
        pytest.fail(f"{path} missing although {MESSAGES} exists")
    return _parse(path.read_text())


def _parse(text: str) -> dict[str, Any]:
    """Kafka's message JSON (with its // comment lines) as data."""
    return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))


KAFKA4_JAR = realkafka.LIB / f"kafka-clients-{realkafka.KAFKA_VERSION}.jar"


@cache
def _kafka4_messages() -> dict[str, str] | str:
    """Kafka 4.x's message schemas by name, from the pinned kafka-clients jar (or why they cannot be had)."""
    if not KAFKA4_JAR.is_file():
        try:
            realkafka.ensure_jars()
        except realkafka.RealKafkaUnavailable as exc:
            return f"Kafka {realkafka.KAFKA_VERSION}'s message schemas need the kafka-clients jar: {exc}"
        if not KAFKA4_JAR.is_file():
            return f"{KAFKA4_JAR} missing after Maven fetched Kafka's jars"
    with zipfile.ZipFile(KAFKA4_JAR) as jar:
        return {
            Path(name).stem: jar.read(name).decode()
            for name in jar.namelist()
            if name.startswith("common/message/") and name.endswith(".json")
        }


@cache
def load4(name: str) -> dict[str, Any]:
    """Kafka 4.x's schema `name` (e.g. ``FetchRequest``)."""
    messages = _kafka4_messages()
    if isinstance(messages, str):
        unavailable(messages)
    assert isinstance(messages, dict)
    if not messages:
        pytest.fail(f"{KAFKA4_JAR} holds no common/message/*.json")
    if name not in messages:
        pytest.fail(f"Kafka {realkafka.KAFKA_VERSION} has no message schema {name}")
    return _parse(messages[name])


def vrange(spec: str | None) -> VersionRange | None:
    return VersionRange.parse(spec)


def has(spec: str | None, version: int) -> bool:
    r = vrange(spec)
    return r is not None and version in r


# --- Kafka's defaults as Python values ------------------------------------


def kafka_default(kf: dict[str, Any]) -> Any:
    """Kafka's ``default`` of a scalar field, as the value kstub should use."""
    raw = kf["default"]
    type_ = kf["type"]
    if raw == "null":
        return None
    if type_ in INTEGERS:
        return raw if isinstance(raw, int) else int(raw, 0)
    if type_ == "bool":
        return raw if isinstance(raw, bool) else {"true": True, "false": False}[raw]
    if type_ == "float64":
        return float(raw)
    if type_ == "uuid":
        return uuid.UUID(raw)
    return raw  # string


ZERO: dict[str, Any] = {
    **dict.fromkeys(INTEGERS, 0),
    "float64": 0.0,
    "bool": False,
    "string": "",
    "bytes": b"",
    "uuid": uuid.UUID(int=0),
}


# --- the comparison -------------------------------------------------------


def _present(kf: dict[str, Any], v: int) -> bool:
    return has(kf.get("versions"), v)


def _kafka_tagged(kf: dict[str, Any], v: int, flexible: bool) -> bool:
    return flexible and "tag" in kf and has(kf.get("taggedVersions"), v)


def _ours_present(f: Field, v: int, flexible: bool) -> bool:
    in_v = f.version_range is not None and v in f.version_range
    if f.tag is None:
        return in_v
    return in_v and flexible and f.tagged_range is not None and v in f.tagged_range


def _ours_tagged(f: Field) -> bool:
    return f.tag is not None


def compare_fields(
    ours: Sequence[Field],
    kafka: list[dict[str, Any]],
    v: int,
    flexible: bool,
    path: str,
    common: dict[str, list[dict[str, Any]]],
    errors: list[str],
) -> None:
    """Append to `errors` every difference between `ours` and `kafka` in version `v`."""
    k_present = [kf for kf in kafka if _present(kf, v) and ("tag" not in kf or _kafka_tagged(kf, v, flexible))]
    o_present = [f for f in ours if _ours_present(f, v, flexible)]

    k_fixed = [snake(kf["name"]) for kf in k_present if not _kafka_tagged(kf, v, flexible)]
    o_fixed = [f.name for f in o_present if not _ours_tagged(f)]
    if k_fixed != o_fixed:
        errors.append(f"{path}: fields in v{v} are {o_fixed}, Kafka has {k_fixed}")

    k_tags = {snake(kf["name"]): kf["tag"] for kf in k_present if _kafka_tagged(kf, v, flexible)}
    o_tags = {f.name: f.tag for f in o_present if _ours_tagged(f)}
    if k_tags != o_tags:
        errors.append(f"{path}: tagged fields in v{v} are {o_tags}, Kafka has {k_tags}")

    by_name = {f.name: f for f in ours}
    for kf in kafka:
        name = snake(kf["name"])
        f = by_name.get(name)
        if f is None or not _present(kf, v):
            continue
        compare_field(f, kf, v, flexible, f"{path}.{name}", common, errors)


def compare_field(
    f: Field,
    kf: dict[str, Any],
    v: int,
    flexible: bool,
    path: str,
    common: dict[str, list[dict[str, Any]]],
    errors: list[str],
) -> None:
    # presence and tagging in v
    if (f.version_range is not None and v in f.version_range) != _present(kf, v):
        errors.append(f"{path}: versions {f.versions!r}, Kafka {kf.get('versions')!r} (differ at v{v})")
    if ("tag" in kf) != (f.tag is not None) or kf.get("tag") != f.tag:
        errors.append(f"{path}: tag {f.tag}, Kafka {kf.get('tag')}")
    if has(kf.get("taggedVersions"), v) != (f.tagged_range is not None and v in f.tagged_range):
        errors.append(f"{path}: tagged {f.tagged!r}, Kafka taggedVersions {kf.get('taggedVersions')!r} (v{v})")

    # nullability in v
    k_null = has(kf.get("nullableVersions"), v)
    o_null = f.nullable_range is not None and v in f.nullable_range
    if k_null != o_null:
        errors.append(f"{path}: nullable {f.nullable!r}, Kafka nullableVersions {kf.get('nullableVersions')!r} (v{v})")

    # a field-level flexibleVersions override ("none": always classic)
    k_classic = kf.get("flexibleVersions") == "none"
    if k_classic != f.classic:
        errors.append(f"{path}: classic={f.classic}, Kafka flexibleVersions {kf.get('flexibleVersions')!r}")

    # type
    ktype: str = kf["type"]
    is_array = ktype.startswith("[]")
    element = ktype[2:] if is_array else ktype
    children = kf.get("fields")
    if children is None and element not in PRIMITIVES:
        children = common.get(element)
        if children is None:
            errors.append(f"{path}: Kafka type {ktype!r} is neither primitive nor a known common struct")
            return
    if children is None:
        if f.type != ktype:
            errors.append(f"{path}: type {f.type!r}, Kafka {ktype!r}")
    elif is_array:
        if not f.is_struct_array:
            errors.append(f"{path}: type {f.type!r}, Kafka has an array of structs {ktype!r}")
        else:
            compare_fields(f.type, children, v, flexible, path, common, errors)  # type: ignore[arg-type]
    else:
        if not isinstance(f.type, Struct):
            errors.append(f"{path}: type {f.type!r}, Kafka has a struct {ktype!r}")
        else:
            compare_fields(f.type.fields, children, v, flexible, path, common, errors)

    # default (scalars only; arrays and structs have no default in Kafka's JSON)
    if children is None and not is_array and ktype != "records":
        ours = f.default_factory(v)()
        if "default" in kf:
            want = kafka_default(kf)
            if ours != want or type(ours) is not type(want):
                errors.append(f"{path}: default {ours!r}, Kafka {kf['default']!r}")
        elif ours is None and ktype == "string" and f.nullable_range is not None:
            # Kafka's implicit default of a string is "", but for a string that
            # may be null kstub may say None (e.g. the request header's client_id,
            # absent in v0): both mean "not given", and decoding never sees it
            # in a version carrying the field.
            pass
        elif ours != ZERO[ktype] or type(ours) is not type(ZERO[ktype]):
            errors.append(f"{path}: default {ours!r}, but Kafka gives none (zero value {ZERO[ktype]!r})")


def _common(schema: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {s["name"]: s["fields"] for s in schema.get("commonStructs", [])}


def _all_names(fields: Sequence[Field], path: str) -> list[tuple[str, Field]]:
    out = []
    for f in fields:
        out.append((f"{path}.{f.name}", f))
        if f.children is not None:
            out.extend(_all_names(f.children, f"{path}.{f.name}"))
    return out


# --- the tests --------------------------------------------------------------
