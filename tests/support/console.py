"""What the console's page sends to the admin API, sent from a test."""

from __future__ import annotations

import urllib.request


def press(admin_url: str, path: str) -> None:
    """POST `path` as one of the page's buttons does (same origin, a JSON body); it must answer 200."""
    here = admin_url.removeprefix("http://")
    req = urllib.request.Request(
        f"{admin_url}{path}",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json", "Origin": f"http://{here}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
