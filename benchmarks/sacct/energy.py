"""ConsumedEnergyRaw on nordic (energy plugin), including its deliberate faults.

About 3 % of the metered jobs lose their reading (``0``) and about 1 % get an implausible one;
EXPECTED.json counts them per file as ``energy_flags``.
"""

from __future__ import annotations

from random import Random

from .accounting import Draft, Job
from .draws import chance, randint, uniform

NO_VAL64_ENERGY = 18446744073709551614  # what a broken energy counter prints in sacct


def node_power_w(rng: Random, draft: Draft) -> float:
    """Whole-node power: the energy plugin meters the node, so neighbours on a shared node count."""
    part, shape, req = draft.part, draft.shape, draft.req
    share = shape.slots_per_node / part.slots_per_node
    if part.gpus_per_node:
        idle_w, full_dynamic_w = 420.0, part.gpus_per_node * 350.0 + 300.0
        own_w = shape.gpus_per_node * 350.0 * req.gpu_util_pct / 100 + 300.0 * share * req.cpu_eff
    else:
        idle_w, full_dynamic_w = 280.0, 450.0
        own_w = full_dynamic_w * share * req.cpu_eff
    neighbours_w = (1 - share) * uniform(rng, 0.0, 0.6) * full_dynamic_w
    return (idle_w + own_w + neighbours_w) * uniform(rng, 0.95, 1.05)


class FaultPlan:
    """Stratified fault draws: in every block of 100 metered jobs exactly 3 lose their energy
    reading (0) and 1 gets an implausible one, at random places, so rates hold for any seed."""

    BLOCK = 100
    FAULTS = ("missing", "missing", "missing", "implausible")

    def __init__(self):
        self.position, self.plan = 0, {}

    def next(self, rng: Random) -> str:
        if self.position % self.BLOCK == 0:
            self.plan = {}
            for fault in self.FAULTS:
                slot = randint(rng, 0, self.BLOCK - 1)
                while slot in self.plan:
                    slot = (slot + 1) % self.BLOCK
                self.plan[slot] = fault
        fault = self.plan.get(self.position % self.BLOCK, "")
        self.position += 1
        return fault


def assign_energy(rng: Random, draft: Draft, job: Job, faults: FaultPlan) -> None:
    """ConsumedEnergyRaw as the energy plugin repeats it: extern = job total, batch a part."""
    if job.state == "RUNNING":
        return
    true_j = int(node_power_w(rng, draft) * draft.shape.nnodes * max(1, draft.elapsed_s))
    fault = faults.next(rng)
    if fault == "missing":
        job.energy_flag = "missing"  # plugin failed: 0 everywhere
        return
    job.energy_j = true_j
    if fault == "implausible":
        job.energy_flag = "implausible"
        job.energy_j = (
            NO_VAL64_ENERGY
            if chance(rng, 0.5)
            else int(uniform(rng, 25_000, 90_000) * draft.shape.nnodes * max(1, draft.elapsed_s))
        )
    for step in job.steps:
        share = step.elapsed_s / max(1, draft.elapsed_s)
        if step.suffix == "extern":
            step.energy_j = job.energy_j
        elif step.suffix == "batch":
            step.energy_j = int(true_j / draft.shape.nnodes * share * uniform(rng, 0.97, 1.0))
        else:
            step.energy_j = int(true_j * share * uniform(rng, 0.96, 0.995))
