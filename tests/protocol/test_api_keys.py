"""`ApiKey` names every API as Kafka does, with Kafka's numbers."""

from __future__ import annotations

import json
import re
import zipfile

from kstub.compat.realkafka import KAFKA_VERSION, RealKafkaUnavailable, ensure_jars
from kstub.protocol import APIS, ApiKey

from support.external import unavailable


def upper_snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).upper()


def test_every_declared_api_is_named_by_its_key() -> None:
    for key, api in APIS.items():
        assert ApiKey(key).name == upper_snake(api.name), (key, api.name)


def test_the_keys_are_kafkas() -> None:
    """Every request schema in the pinned kafka-clients jar has its key here, by the same name."""
    try:
        jar = ensure_jars() / f"kafka-clients-{KAFKA_VERSION}.jar"
    except RealKafkaUnavailable as exc:
        unavailable(f"Kafka's schemas are in its jars: {exc}")
    kafka = {}
    with zipfile.ZipFile(jar) as z:
        for name in z.namelist():
            if re.fullmatch(r"common/message/\w+Request\.json", name):
                text = re.sub(r"^\s*//.*$", "", z.read(name).decode(), flags=re.M)
                schema = json.loads(text)
                if "apiKey" in schema:
                    kafka[schema["apiKey"]] = upper_snake(schema["name"].removesuffix("Request"))
    assert len(kafka) > 90
    assert {k.value: k.name for k in ApiKey} == kafka
