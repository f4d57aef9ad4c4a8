"""Retention by Kafka's rules (UnifiedLog.deleteOldSegments), on memory and disk logs alike."""

from __future__ import annotations

from logtools import build_batch

from kstub.cluster.config import BrokerConfig, TopicSettings, topic_config_value
from kstub.cluster.retention import apply_retention

T0 = 1_700_000_000_000
HOUR = 3_600_000


def settings(**configs: str):
    values = {k.replace("_", "."): str(v) for k, v in configs.items()}
    return TopicSettings(lambda name: values.get(name) or topic_config_value(name, {}, BrokerConfig()))


def three_segments(make_log, timestamps=(T0, T0 + HOUR, T0 + 2 * HOUR)):
    """Segments of two one-record batches each, the records of segment i at timestamps[i]."""
    size = len(build_batch().data)
    lg = make_log(segment_bytes=size * 2)
    for ts in timestamps:
        lg.append(build_batch(timestamp=ts), 0)
        lg.append(build_batch(timestamp=ts), 0)
    assert [s.base_offset for s in lg.segments] == [0, 2, 4]
    return lg, size


def test_time_retention_deletes_the_segments_whose_newest_record_is_too_old(make_log):
    lg, _ = three_segments(make_log)
    now = T0 + 2 * HOUR + 10
    deleted = apply_retention(lg, settings(retention_ms=HOUR), lg.log_end_offset, now)
    # segment 0 is 2h old, segment 1 exactly 1h + 10ms: both breach; segment 2 stays
    assert deleted == 2
    assert [s.base_offset for s in lg.segments] == [4]
    assert lg.log_start_offset == 4


def test_time_retention_stops_at_the_first_segment_that_must_stay(make_log):
    lg, _ = three_segments(make_log, timestamps=(T0 + 2 * HOUR, T0, T0))
    assert apply_retention(lg, settings(retention_ms=HOUR), lg.log_end_offset, T0 + 2 * HOUR + 1) == 0
    assert lg.log_start_offset == 0


def test_when_everything_expired_the_log_rolls_and_keeps_an_empty_active_segment(make_log):
    lg, _ = three_segments(make_log)
    assert apply_retention(lg, settings(retention_ms=1000), lg.log_end_offset, T0 + 10 * HOUR) == 3
    assert [(s.base_offset, len(s)) for s in lg.segments] == [(6, 0)]
    assert (lg.log_start_offset, lg.log_end_offset) == (6, 6)
    # an empty last segment is never deleted
    assert apply_retention(lg, settings(retention_ms=1000), lg.log_end_offset, T0 + 20 * HOUR) == 0


def test_retention_never_passes_the_high_watermark(make_log):
    lg, _ = three_segments(make_log)
    # high watermark 3: segment 0 (next starts at 2) may go, segment 1 (next starts at 4) may not
    assert apply_retention(lg, settings(retention_ms=1000), 3, T0 + 10 * HOUR) == 1
    assert lg.log_start_offset == 2


def test_size_retention_keeps_the_log_at_or_above_the_limit(make_log):
    lg, size = three_segments(make_log)
    # 6 batches; a limit of 3.5 batches: removing 2 (one segment) leaves 4 >= 3.5, removing 4 would leave 2 < 3.5
    assert apply_retention(lg, settings(retention_bytes=int(size * 3.5)), lg.log_end_offset, T0) == 1
    assert lg.log_start_offset == 2 and lg.size_bytes == 4 * size
    # at exactly the limit: one more segment may go (size - limit - segment >= 0)
    assert apply_retention(lg, settings(retention_bytes=size * 2), lg.log_end_offset, T0) == 1
    assert lg.log_start_offset == 4
    assert apply_retention(lg, settings(retention_bytes=size * 2), lg.log_end_offset, T0) == 0


def test_size_below_the_limit_deletes_nothing(make_log):
    lg, size = three_segments(make_log)
    assert apply_retention(lg, settings(retention_bytes=size * 7), lg.log_end_offset, T0) == 0


def test_compact_only_topics_ignore_time_and_size(make_log):
    lg, _ = three_segments(make_log)
    config = settings(cleanup_policy="compact", retention_ms=1, retention_bytes=1)
    assert apply_retention(lg, config, lg.log_end_offset, T0 + 10 * HOUR) == 0
    config = settings(cleanup_policy="compact,delete", retention_ms=1)
    assert apply_retention(lg, config, lg.log_end_offset, T0 + 10 * HOUR) == 3


def test_segments_below_the_log_start_offset_go_whatever_the_policy(make_log):
    lg, _ = three_segments(make_log)
    lg.log_start_offset = 4  # as a follower learning its leader's start, before segments are cleaned
    assert apply_retention(lg, settings(cleanup_policy="compact"), lg.log_end_offset, T0) == 2
    assert [s.base_offset for s in lg.segments] == [4]


def test_segments_without_timestamps_age_by_their_last_modification(make_log, clock):
    lg = make_log()
    lg.append(build_batch(timestamp=-1), 0)
    clock.now += HOUR
    lg.roll()
    lg.append(build_batch(timestamp=-1), 0)
    assert apply_retention(lg, settings(retention_ms=HOUR // 2), lg.log_end_offset, clock.now + 1) == 1
    assert lg.log_start_offset == 1


def test_broker_retention_defaults_follow_kafkas_precedence():
    assert topic_config_value("retention.ms", {}, BrokerConfig()) == str(168 * HOUR)
    assert topic_config_value("retention.ms", {}, BrokerConfig({"log.retention.hours": "2"})) == str(2 * HOUR)
    both = BrokerConfig({"log.retention.hours": "2", "log.retention.minutes": "3"})
    assert topic_config_value("retention.ms", {}, both) == "180000"
    three = BrokerConfig({"log.retention.hours": "2", "log.retention.minutes": "3", "log.retention.ms": "5"})
    assert topic_config_value("retention.ms", {}, three) == "5"
    assert topic_config_value("retention.ms", {}, BrokerConfig({"log.retention.ms": "-5"})) == "-1"
    assert topic_config_value("retention.ms", {"retention.ms": "7"}, three) == "7"
    assert topic_config_value("retention.bytes", {}, BrokerConfig({"log.retention.bytes": "99"})) == "99"
    assert topic_config_value("segment.ms", {}, BrokerConfig({"log.roll.hours": "1"})) == str(HOUR)
