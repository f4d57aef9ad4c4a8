"""DeleteGroups (key 42): versions 0-2, flexible from v2."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=42,
    name="DeleteGroups",
    min_version=0,
    max_version=2,
    flexible_from=2,
    request=[
        F("groups_names", "[]string"),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F("results", [F("group_id", "string"), F("error_code", "int16")]),
    ],
)
