"""The Java client (Apache Kafka's kafka-clients, classic consumer groups) through compat/java's driver.

The driver (dev.kstub.compat.Driver, built by Maven into compat/java/target on
first use) runs in one JVM for the whole run; see compat/clients/driven.py for
its protocol. Consumer groups use the classic protocol (group.protocol=classic)
with the client's default assignors; the producer keeps the client's defaults
(idempotent, acks=all) unless a scenario asks otherwise.
"""

from __future__ import annotations

import os

from ..build import JAVA, JAVA_JAR, JAVA_LIB
from .driven import DrivenClient


class Java(DrivenClient):
    name = "java"
    target = JAVA
    limitations = {
        "null-key-spread": "its built-in partitioner (KIP-794) moves null-key messages to another partition only "
        "after batch.size (16 KiB) went to one, however they are batched",
    }

    @classmethod
    def argv(cls) -> list[str]:
        return [
            "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            "-cp", f"{JAVA_JAR}{os.pathsep}{JAVA_LIB}{os.sep}*", "dev.kstub.compat.Driver",
        ]  # fmt: skip
