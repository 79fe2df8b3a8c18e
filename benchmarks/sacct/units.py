"""Time and memory units shared by every module; all times are whole seconds (suffix ``_s``)."""

MINUTE_S = 60
HOUR_S = 3600
DAY_S = 86400
KIB_PER_GIB = 1024 * 1024


def hours_s(hours: float) -> int:
    return int(hours * HOUR_S)
