"""kstub: a wire-compatible Kafka broker on Trio, for tests and local development.

``kstub.Cluster`` (synchronous, a context manager), ``kstub.open_cluster`` and
``kstub.serve`` (Trio) are loaded on first use, so that ``import kstub`` (and
``kstub serve``'s start-up) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kstub.cluster.model import ClusterError
    from kstub.embedded import FIXTURE_DEFAULTS, Cluster, TrioCluster, open_cluster, serve

_LAZY = {
    "Cluster": "kstub.embedded",
    "TrioCluster": "kstub.embedded",
    "open_cluster": "kstub.embedded",
    "serve": "kstub.embedded",
    "FIXTURE_DEFAULTS": "kstub.embedded",
    "ClusterError": "kstub.cluster.model",
}

__all__ = ["FIXTURE_DEFAULTS", "Cluster", "ClusterError", "TrioCluster", "__version__", "open_cluster", "serve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kstub' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
