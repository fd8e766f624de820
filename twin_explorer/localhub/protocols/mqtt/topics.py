"""MQTT 3.1.1 topic names and topic filters (section 4.7): validation and matching."""

from __future__ import annotations

_MAX_TOPIC_BYTES = 0xFFFF


def _fits(text: str) -> bool:
    if not text or "\x00" in text:
        return False
    try:
        return len(text.encode("utf-8")) <= _MAX_TOPIC_BYTES
    except UnicodeEncodeError:  # lone surrogates cannot be sent
        return False


def is_valid_topic_name(topic: str) -> bool:
    """A name a PUBLISH may carry: non-empty, no wildcards (MQTT-3.3.2-2, 4.7.3)."""
    return _fits(topic) and "+" not in topic and "#" not in topic


def is_valid_filter(topic_filter: str) -> bool:
    """A filter a SUBSCRIBE may carry: `+` fills a whole level, `#` only the last one."""
    if not _fits(topic_filter):
        return False
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False  # MQTT-4.7.1-2
        if "+" in level and level != "+":
            return False  # MQTT-4.7.1-3
    return True


def filter_matches(topic_filter: str, topic: str) -> bool:
    """Does `topic_filter` select `topic`?

    Both are assumed valid. Filters that start with a wildcard do not match topics that start
    with `$` (MQTT-4.7.2-1), so `#` does not see `$iothub/...`, but `$iothub/#` does.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            # "a/#" also matches the parent "a" (4.7.1.2).
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == len(topic_levels)
