"""The table of declared APIs (protocol/messages/__init__.py) says what the schema modules say.

The table lets kstub answer ApiVersions and check versions without importing
every schema; each module is imported on the first use of its API.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import kstub.protocol.messages as messages
from kstub.protocol import APIS
from kstub.protocol.schema import Api


def _modules() -> dict[str, Api]:
    found = {}
    for info in pkgutil.iter_modules(messages.__path__):
        if info.name.startswith("k"):
            api = importlib.import_module(f"{messages.__name__}.{info.name}").API
            assert isinstance(api, Api), info.name
            found[info.name] = api
    return found


def test_every_module_is_in_the_table_and_agrees_with_it() -> None:
    modules = _modules()
    assert sorted(entry[0] for entry in messages.DECLARED.values()) == sorted(modules)
    for key, (module, name, low, high, flexible_from) in messages.DECLARED.items():
        api = modules[module]
        assert (api.key, api.name, api.min_version, api.max_version, api.flexible_from) == (
            key,
            name,
            low,
            high,
            flexible_from,
        ), module
        assert module.startswith(f"k{key:02d}_"), module


def test_the_lazy_fields_are_the_modules_fields() -> None:
    modules = _modules()
    for key, api in APIS.items():
        declared = modules[messages.DECLARED[key][0]]
        assert list(api.request) == list(declared.request)
        assert list(api.response) == list(declared.response)
        assert api.request[0] is declared.request[0]
        assert len(api.response) == len(declared.response)
        assert api == declared


def test_a_schema_is_imported_on_first_use_only() -> None:
    code = (
        "import sys\n"
        "from kstub.protocol import APIS\n"
        "prefix = 'kstub.protocol.messages.'\n"
        "loaded = lambda: sorted(m.removeprefix(prefix) for m in sys.modules if m.startswith(prefix))\n"
        "print(loaded())\n"
        "print(len(APIS), APIS[3].name, APIS[3].max_version, APIS[0].supports(9), 99 in APIS)\n"
        "print(loaded())\n"
        "raw = APIS[3].request_codec(1).encode({'topics': None})\n"
        "print(loaded(), APIS[3].request_codec(1).decode(raw).topics)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "[]",
        f"{len(messages.DECLARED)} Metadata {messages.DECLARED[3][3]} True False",
        "[]",
        "['k03_metadata'] None",
    ]
