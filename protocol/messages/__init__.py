"""One module per API key (``kNN_name.py``), each declaring its request and response once.

Every module here that defines ``API`` is registered by its key; adding an API
is adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..schema import Api


def _discover() -> dict[int, Api]:
    apis: dict[int, Api] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("k"):
            continue
        api = getattr(importlib.import_module(f"{__name__}.{info.name}"), "API", None)
        if isinstance(api, Api):
            if api.key in apis:
                raise ImportError(f"api key {api.key} declared twice ({info.name})")
            apis[api.key] = api
    return dict(sorted(apis.items()))


#: Every API the codec declares, by key.
ALL: dict[int, Api] = _discover()
