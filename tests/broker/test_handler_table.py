"""The handler table (kstub/handlers/__init__.py) names the module that serves each API.

Handler modules are imported at the first request of one of their APIs: until
then a stand-in in `REGISTRY` imports the module and hands the request over.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from kstub.handlers import HANDLERS, _stand_in

CHECK_TABLE = """
import sys
import kstub.handlers as h
from kstub.handlers.base import REGISTRY, UNADVERTISED
loaded = lambda: sorted(m for m in sys.modules if m.startswith("kstub.handlers.") and m != "kstub.handlers.base")
print(loaded())
keys, unadvertised = sorted(REGISTRY), set(UNADVERTISED)
print(keys == sorted(h.HANDLERS))
h.load_all()
print(sorted(REGISTRY) == keys, set(UNADVERTISED) == unadvertised)
print(all(REGISTRY[k].__module__ == "kstub.handlers." + m for k, m in h.HANDLERS.items()))
"""


def test_the_table_is_what_the_modules_register() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK_TABLE], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "True", "True True", "True"]


SERVE_ONE = """
import sys
import kstub
from kstub.kafka_client import Connection
with kstub.Cluster() as cluster, Connection(cluster.bootstrap_servers, client_id="t") as conn:
    print("kstub.handlers.metadata" in sys.modules)
    body = conn.request(3, 1, {"topics": None})
    print(len(body["brokers"]), "kstub.handlers.metadata" in sys.modules, "kstub.handlers.produce" in sys.modules)
    body = conn.request(3, 1, {"topics": None})
    print(len(body["brokers"]))
"""


def test_a_module_is_imported_at_the_first_request_of_its_api() -> None:
    out = subprocess.run([sys.executable, "-c", SERVE_ONE], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["False", "1 True False", "1"]


async def test_a_stand_in_whose_module_does_not_register_the_key_says_so() -> None:
    assert HANDLERS[3] == "metadata"
    with pytest.raises(RuntimeError, match=r"kstub\.handlers\.metadata does not handle api key 9999"):
        await _stand_in(9999, "metadata")(None, None)  # type: ignore[arg-type]
