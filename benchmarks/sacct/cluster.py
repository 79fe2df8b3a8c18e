"""The two simulated clusters: partitions, node names and hostlists, and sacct column layout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

CPU_SLOTS_PER_NODE = 8  # CPU nodes are tracked in 8 core chunks so small jobs can share


@dataclass(frozen=True)
class Partition:
    name: str
    node_prefix: str
    node_count: int
    index_width: int
    cpus_per_node: int
    mem_per_node_mb: int
    gpus_per_node: int = 0
    gpu_type: str = ""
    gpu_mem_gib: int = 0

    @property
    def slots_per_node(self) -> int:
        """Allocation units we track per node: one per GPU, or CPU chunks on CPU nodes."""
        return self.gpus_per_node or CPU_SLOTS_PER_NODE

    def node_name(self, index: int) -> str:
        return f"{self.node_prefix}{index + 1:0{self.index_width}d}"


@dataclass(frozen=True)
class Cluster:
    name: str
    tz_name: str
    fields: tuple[str, ...]
    header: bool
    trailing_delimiter: bool
    file_ext: str
    partitions: dict[str, Partition]
    partition_map: dict[str, str]  # workload's wish ("h100", "a100", "cpu") -> partition
    workload_weights: tuple[tuple[str, float], ...]  # per submission, not per array task
    special_names: tuple[tuple[float, str, str], ...]  # (fraction, workload, job name)
    gpu_accounting: bool
    energy_plugin: bool
    first_job_id: int
    uid_base: int
    legacy_reqmem_rate: float = 0.0
    requeue_rate: float = 0.0
    het_rate: float = 0.0

    @cached_property
    def columns(self) -> tuple[int, ...]:
        """Indexes of this cluster's fields in a row built in atlas order (see COLUMN)."""
        return tuple(COLUMN[name] for name in self.fields)


# The header lines as sacct prints them (nordic's dumps are --noheader, but the order is the same).
ATLAS_HEADER = (
    "JobID|JobIDRaw|JobName|User|Account|Partition|QOS|WCKey|Comment|NodeList|NNodes|NCPUS|"
    "NTasks|State|ExitCode|Submit|Start|End|Elapsed|ElapsedRaw|Timelimit|TotalCPU|CPUTime|ReqMem|"
    "MaxRSS|ReqTRES|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw"
)
NORDIC_HEADER = (
    "JobID|JobName|User|Account|Partition|NodeList|NNodes|NCPUS|State|Submit|Start|End|Elapsed|"
    "Timelimit|TotalCPU|ReqMem|MaxRSS|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw|Comment"
)
ATLAS_FIELDS = tuple(ATLAS_HEADER.split("|"))
NORDIC_FIELDS = tuple(NORDIC_HEADER.split("|"))
# Rows are built as lists in atlas order (a superset of nordic's columns) and picked by index.
COLUMN = {name: index for index, name in enumerate(ATLAS_FIELDS)}

CLUSTERS = {
    "atlas": Cluster(
        name="atlas",
        tz_name="America/New_York",
        fields=ATLAS_FIELDS,
        header=True,
        trailing_delimiter=False,
        file_ext="psv",
        partitions={
            "h100": Partition("h100", "atl-h", 16, 3, 112, 2000 * 1024, 8, "h100", 80),
            "a100": Partition("a100", "atl-a", 24, 3, 128, 1000 * 1024, 8, "a100", 80),
            "cpu": Partition("cpu", "atl-c", 32, 3, 128, 512 * 1024),
        },
        partition_map={"h100": "h100", "a100": "a100", "cpu": "cpu"},
        workload_weights=(
            ("pretrain_train", 5.0),
            ("pretrain_prep", 3.0),
            ("pretrain_tok", 2.5),
            ("posttrain", 11.0),
            ("serving_batch", 7.0),
            ("serving_long", 4.0),
            ("evals", 1.6),
            ("vision_pretrain", 3.0),
            ("vision_finetune", 4.0),
            ("vision_prep", 2.5),
            ("research_dev", 9.0),
            ("research_interactive", 6.0),
            ("misc", 3.0),
        ),
        special_names=(
            (0.22, "pretrain_train", "pt-orca-7b-rü01"),
            (0.47, "research_dev", "dev-<script>alert(1)</script>"),
            (0.64, "research_dev", "dev-größe-sweep"),
        ),
        gpu_accounting=True,
        energy_plugin=False,
        first_job_id=4_812_000,
        uid_base=20_101,
        # requeue/het rates apply to non-array submissions (~60 % of jobs): ~0.5 % of all jobs
        legacy_reqmem_rate=0.05,
        requeue_rate=0.008,
        het_rate=0.02,
    ),
    "nordic": Cluster(
        name="nordic",
        tz_name="Europe/Stockholm",
        fields=NORDIC_FIELDS,
        header=False,
        trailing_delimiter=True,
        file_ext="txt",
        partitions={
            "gpu": Partition("gpu", "nor-g", 12, 2, 64, 500 * 1024, 4, "a100", 40),
            "cpu": Partition("cpu", "nor-c", 20, 2, 128, 256 * 1024),
        },
        partition_map={"h100": "gpu", "a100": "gpu", "cpu": "cpu"},
        workload_weights=(
            ("serving_batch", 10.0),
            ("serving_long", 6.0),
            ("evals", 0.8),
            ("vision_pretrain", 8.0),
            ("vision_finetune", 8.0),
            ("vision_prep", 6.0),
            ("research_dev", 10.0),
            ("research_interactive", 8.0),
            ("misc", 4.0),
        ),
        special_names=((0.35, "research_dev", "dev-överföring-01"),),
        gpu_accounting=False,
        energy_plugin=True,
        first_job_id=1_207_000,
        uid_base=61_001,
    ),
}


# Cached (bounded): a job's lines repeat the same node lists, and formatting is a large share of
# the run time at benchmark scale.
@lru_cache(maxsize=1 << 12)
def hostlist(part: Partition, indices: tuple[int, ...]) -> str:
    """Compressed Slurm hostlist: atl-h005, atl-h[001-003,007]."""
    width = part.index_width
    if len(indices) == 1:
        return part.node_name(indices[0])
    ranges, first, previous = [], indices[0], indices[0]
    for index in indices[1:] + (None,):
        if index is not None and index == previous + 1:
            previous = index
            continue
        text = f"{first + 1:0{width}d}"
        ranges.append(text if first == previous else f"{text}-{previous + 1:0{width}d}")
        first = previous = index
    return f"{part.node_prefix}[{','.join(ranges)}]"
