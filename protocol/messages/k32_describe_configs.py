"""DescribeConfigs (key 32): versions 0-4, flexible from v4."""

from ..schema import Api
from ..schema import Field as F

API = Api(
    key=32,
    name="DescribeConfigs",
    min_version=0,
    max_version=4,
    flexible_from=4,
    request=[
        F(
            "resources",
            [
                F("resource_type", "int8"),
                F("resource_name", "string"),
                F("configuration_keys", "[]string", nullable="0+"),
            ],
        ),
        F("include_synonyms", "bool", "1+", default=False),
        F("include_documentation", "bool", "3+", default=False),
    ],
    response=[
        F("throttle_time_ms", "int32"),
        F(
            "results",
            [
                F("error_code", "int16"),
                F("error_message", "string", nullable="0+"),
                F("resource_type", "int8"),
                F("resource_name", "string"),
                F(
                    "configs",
                    [
                        F("name", "string"),
                        F("value", "string", nullable="0+"),
                        F("read_only", "bool"),
                        F("is_default", "bool", "0"),
                        F("config_source", "int8", "1+", default=-1),
                        F("is_sensitive", "bool"),
                        F(
                            "synonyms",
                            [
                                F("name", "string", "1+"),
                                F("value", "string", "1+", nullable="0+"),
                                F("source", "int8", "1+"),
                            ],
                            "1+",
                        ),
                        F("config_type", "int8", "3+", default=0),
                        F("documentation", "string", "3+", nullable="0+"),
                    ],
                ),
            ],
        ),
    ],
)
