"""ApiVersions: which APIs and versions each broker serves."""

from __future__ import annotations

from support.differential import Pair


def test_api_versions_lists_what_kstub_serves(pair: Pair) -> None:
    kstub, kafka = pair.send(18, {"client_software_name": "kstub-differential", "client_software_version": "1"})
    assert kstub.error_code == kafka.error_code == 0
    ours = {k.api_key: (k.min_version, k.max_version) for k in kstub.api_keys}
    theirs = {k.api_key: (k.min_version, k.max_version) for k in kafka.api_keys}
    print({k: (ours[k], theirs.get(k)) for k in ours})
    assert set(ours) <= set(theirs)
