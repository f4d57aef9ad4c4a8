"""ApiVersions (key 18): versions 0-5, flexible from v3."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=18,
    name="ApiVersions",
    min_version=0,
    max_version=5,
    flexible_from=3,
    request=[
        F("client_software_name", "string", "3+"),
        F("client_software_version", "string", "3+"),
        F("cluster_id", "string", "5+", nullable="5+", default=None),
        F("node_id", "int32", "5+", default=-1),
    ],
    response=[
        F("error_code", "int16"),
        F(
            "api_keys",
            [
                F("api_key", "int16"),
                F("min_version", "int16"),
                F("max_version", "int16"),
            ],
        ),
        F("throttle_time_ms", "int32", "1+"),
        F(
            "supported_features",
            [
                F("name", "string", "3+"),
                F("min_version", "int16", "3+"),
                F("max_version", "int16", "3+"),
            ],
            "3+",
            tag=0,
            tagged="3+",
        ),
        F("finalized_features_epoch", "int64", "3+", tag=1, tagged="3+", default=-1),
        F(
            "finalized_features",
            [
                F("name", "string", "3+"),
                F("max_version_level", "int16", "3+"),
                F("min_version_level", "int16", "3+"),
            ],
            "3+",
            tag=2,
            tagged="3+",
        ),
        F("zk_migration_ready", "bool", "3+", tag=3, tagged="3+"),
    ],
)
