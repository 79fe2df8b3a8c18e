"""sacct's text for single values: durations, CPU time, memory, TRES lists and timestamps.

The pure formatters are cached (bounded): a job's lines repeat the same durations and TRES lists,
and formatting is a large share of the run time at benchmark scale.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .units import DAY_S, HOUR_S, MINUTE_S


@lru_cache(maxsize=1 << 16)
def fmt_duration(total_s: int) -> str:
    """Elapsed/Timelimit/CPUTime: [D-]HH:MM:SS."""
    days, rest = divmod(total_s, DAY_S)
    hours, rest = divmod(rest, HOUR_S)
    minutes, seconds = divmod(rest, MINUTE_S)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def fmt_cpu_ms(total_ms: int) -> str:
    """TotalCPU: MM:SS.mmm below one hour (no hours field!), [D-]HH:MM:SS from one hour on.

    A plain zero (pending, running or never-started jobs) prints as 00:00:00.
    """
    if 0 < total_ms < HOUR_S * 1000:
        minutes, rest = divmod(total_ms, 60_000)
        seconds, millis = divmod(rest, 1000)
        return f"{minutes:02d}:{seconds:02d}.{millis:03d}"
    return fmt_duration(total_ms // 1000)


def fmt_mem_mb(mem_mb: int) -> str:
    """Slurm prints memory in the biggest unit that divides it exactly: 256000 -> 250G."""
    value, unit = mem_mb, 0
    while unit < 2 and value and value % 1024 == 0:
        value //= 1024
        unit += 1
    return f"{value}{'MGT'[unit]}"


@lru_cache(maxsize=1 << 12)
def tres_text(
    cpus: int, gpus: int, gpu_type: str, mem_mb: int, nodes: int, billing: int | None = None
) -> str:
    """ReqTRES/AllocTRES list; typed GPU entry first, then the untyped count (as sacct does)."""
    parts = [] if billing is None else [f"billing={billing}"]
    parts.append(f"cpu={cpus}")
    if gpus and gpu_type:
        parts.append(f"gres/gpu:{gpu_type}={gpus}")
    if gpus:
        parts.append(f"gres/gpu={gpus}")
    parts += [f"mem={fmt_mem_mb(mem_mb)}", f"node={nodes}"]
    return ",".join(parts)


def fmt_kib(kib: int) -> str:
    """Memory usage in KiB; sacct prints a zero without unit (gres/gpumem=0, mem=0)."""
    return f"{kib}K" if kib else "0"


class LocalClock:
    """UTC epoch seconds -> the naive local wall-clock text sacct prints without TZ=UTC.

    Offsets are cached per UTC hour: both zones change offset on a whole UTC hour, and the cache
    is bounded by the span of the dump, not by the number of jobs.
    """

    def __init__(self, tz_name: str):
        self.tz = ZoneInfo(tz_name)
        self._offset_by_hour: dict[int, int] = {}
        self._date_by_day: dict[int, str] = {}
        self._recent: dict[int, str] = {}  # job and step lines repeat the same instants

    def offset_s(self, epoch_s: int) -> int:
        hour = epoch_s // HOUR_S
        offset = self._offset_by_hour.get(hour)
        if offset is None:
            moment = datetime.fromtimestamp(hour * HOUR_S, self.tz)
            offset = int(moment.utcoffset().total_seconds())
            self._offset_by_hour[hour] = offset
        return offset

    def format(self, epoch_s: int) -> str:
        text = self._recent.get(epoch_s)
        if text is None:
            if len(self._recent) > 4096:
                self._recent.clear()  # bounded memory, whatever the job count
            text = self._recent[epoch_s] = self._format(epoch_s)
        return text

    def _format(self, epoch_s: int) -> str:
        day, second_of_day = divmod(epoch_s + self.offset_s(epoch_s), DAY_S)
        prefix = self._date_by_day.get(day)
        if prefix is None:
            prefix = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
            self._date_by_day[day] = prefix
        hours, rest = divmod(second_of_day, HOUR_S)
        minutes, seconds = divmod(rest, MINUTE_S)
        return f"{prefix}T{hours:02d}:{minutes:02d}:{seconds:02d}"

    def month(self, epoch_s: int) -> str:
        return self.format(epoch_s)[:7]

    def midnight_s(self, iso_date: str) -> int:
        """Local midnight of a YYYY-MM-DD date (sacct --starttime is local too)."""
        return int(datetime.fromisoformat(iso_date).replace(tzinfo=self.tz).timestamp())
