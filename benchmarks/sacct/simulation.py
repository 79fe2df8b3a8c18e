"""The simulation: draws submissions in Submit order and turns them into jobs, one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from random import Random

from .accounting import JOB_EXIT_CODE, Draft, Job, build_steps
from .cluster import Cluster, hostlist
from .draws import chance, log_uniform, randint, uniform, weighted
from .energy import FaultPlan, assign_energy
from .faults import BAD_LINE_KINDS, CORRUPTION_FRACTIONS, corruptible
from .format import LocalClock, tres_text
from .schedule import (
    DEADLINE_RUSH_S,
    MAX_QUEUE_WAIT_S,
    NodePool,
    SubmitProfile,
    actual_elapsed_s,
    choose_timelimit,
    cpu_shape,
    gpu_shape,
)
from .units import DAY_S, HOUR_S, MINUTE_S
from .workload import ALL_USERS, HET_WORKLOADS, WORKLOADS, JobRequest

# The submission at this fraction is always an eval array: submitted in the end-of-window rush, it
# is left partly pending, so every dump has a <master>_[a-b] PENDING line.
LATE_ARRAY_FRACTION = 0.993


class SpecialQueue:
    """Special names and deliberate corruptions, armed once a fraction of submissions is reached."""

    def __init__(self, cluster: Cluster, n_jobs: int):
        self.names = [
            (int(fraction * n_jobs), workload, name)
            for fraction, workload, name in cluster.special_names
        ]
        self.corruptions = [
            (int(fraction * n_jobs), kind)
            for fraction, kind in zip(CORRUPTION_FRACTIONS, BAD_LINE_KINDS, strict=True)
        ]
        self.late_array_slot = int(LATE_ARRAY_FRACTION * n_jobs)
        self.slot = 0

    def take_workload(self) -> str:
        if self.late_array_slot is not None and self.slot >= self.late_array_slot:
            self.late_array_slot = None
            return "evals"
        return ""

    def take_name(self, workload: str) -> str:
        for entry in self.names:
            if entry[0] <= self.slot and entry[1] == workload:
                self.names.remove(entry)
                return entry[2]
        return ""

    def maybe_corrupt(self, job: Job) -> None:
        for entry in self.corruptions:
            if entry[0] <= self.slot and corruptible(job, entry[1]):
                self.corruptions.remove(entry)
                job.corruption = entry[1]
                return


class Simulation:
    """Draws submissions in Submit order and turns them into finished/running/pending jobs."""

    def __init__(
        self, cluster: Cluster, n_jobs: int, seed: int, start_s: int, end_s: int, clock: LocalClock
    ):
        self.cluster, self.n_jobs, self.rng = cluster, n_jobs, Random(seed)
        self.start_s, self.end_s = start_s, end_s
        self.profile = SubmitProfile(clock, start_s, end_s)
        self.pools = {name: NodePool(part) for name, part in cluster.partitions.items()}
        self.specials = SpecialQueue(cluster, n_jobs)
        self.next_job_id = cluster.first_job_id
        self.energy_faults = FaultPlan()
        self.oversubscribed_starts = 0  # jobs started on busy nodes because of MAX_QUEUE_WAIT_S

    def jobs(self) -> Iterator[Job]:
        slot = 0
        while slot < self.n_jobs:
            self.specials.slot = slot
            req = self.draw_request(self.n_jobs - slot)
            submit_s = self.profile.time_at((slot + self.rng.random()) / self.n_jobs)
            for job in self.submission(req, submit_s):
                self.specials.maybe_corrupt(job)
                yield job
            slot += max(1, req.array_tasks)

    def draw_request(self, remaining_slots: int) -> JobRequest:
        workload = self.specials.take_workload() or weighted(
            self.rng, self.cluster.workload_weights
        )
        req = WORKLOADS[workload](self.rng)
        req.array_tasks = min(req.array_tasks, remaining_slots)
        special = self.specials.take_name(workload)
        if special:
            req.name, req.special_name = special, True
        return req

    def take_ids(self, count: int) -> int:
        """Consecutive job ids; small gaps appear where other clusters' or dropped ids were."""
        first = self.next_job_id
        self.next_job_id += count + (randint(self.rng, 1, 3) if chance(self.rng, 0.1) else 0)
        return first

    def submission(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        rng, cluster = self.rng, self.cluster
        if req.array_tasks:
            return self.array_jobs(req, submit_s)
        if req.workload in HET_WORKLOADS and chance(rng, cluster.het_rate):
            return self.het_jobs(req, submit_s)
        if chance(rng, cluster.requeue_rate):
            return self.requeued_jobs(req, submit_s)
        job_id = str(self.take_ids(1))
        return iter([self.run(self.new_draft(req, job_id, job_id, submit_s))])

    def new_draft(self, req: JobRequest, job_id: str, raw_id: str, submit_s: int) -> Draft:
        rng = self.rng
        part = self.cluster.partitions[self.cluster.partition_map[req.partition]]
        legacy = chance(rng, self.cluster.legacy_reqmem_rate)
        shape = (gpu_shape if req.gpus_per_node else cpu_shape)(rng, req, part, legacy)
        timelimit_s, timelimit = choose_timelimit(rng, req.duration_s, req.max_timelimit_s)
        return Draft(
            req,
            part,
            shape,
            job_id,
            raw_id,
            submit_s,
            self.draw_state(req, timelimit_s),
            timelimit_s,
            timelimit,
        )

    def draw_state(self, req: JobRequest, timelimit_s: int | None) -> str:
        state = weighted(self.rng, req.states)
        if state == "TIMEOUT" and timelimit_s is None:
            return "COMPLETED"  # no limit, nothing to time out against
        return state

    def run(self, draft: Draft, not_before_s: int = 0) -> Job:
        self.schedule(draft, not_before_s)
        return self.materialise(draft)

    def queue_wait_s(self, draft: Draft) -> int:
        """Scheduler latency plus, now and then, a hold (dependency, priority, QOS limit).

        In the last days of the window a deadline rush holds half of the new jobs, so every dump
        ends with PENDING jobs and partly started arrays, as a real end-of-quarter dump does.
        """
        rng = self.rng
        wait_s = int(log_uniform(rng, 3, 45 * MINUTE_S))
        if draft.shape.nnodes > 1:
            wait_s *= 3
        rush = draft.submit_s >= self.end_s - DEADLINE_RUSH_S
        if chance(rng, 0.5 if rush else 0.02):
            wait_s += int(log_uniform(rng, HOUR_S, 4 * DAY_S))
        return wait_s

    def schedule(self, draft: Draft, not_before_s: int = 0) -> None:
        """Sets start/elapsed, or turns the job into PENDING / cancelled-before-start / RUNNING."""
        rng = self.rng
        wait_s = self.queue_wait_s(draft)
        if draft.state == "CANCELLED" and draft.kind != "het" and chance(rng, 0.25):
            draft.cancel_end_s = draft.submit_s + randint(rng, 10, wait_s + 20 * MINUTE_S)
            if draft.cancel_end_s >= self.end_s:
                draft.state, draft.cancel_end_s = "PENDING", None
            return
        nodes, start_s = self.place(draft, max(draft.submit_s + wait_s, not_before_s))
        self.commit(draft, nodes, start_s)

    def place(self, draft: Draft, earliest_s: int) -> tuple[list[int], int]:
        shape = draft.shape
        nodes, ready_s = self.pools[draft.part.name].place(
            shape.nnodes, shape.slots_per_node, earliest_s
        )
        latest_s = draft.submit_s + MAX_QUEUE_WAIT_S
        if ready_s > latest_s and ready_s > earliest_s:
            self.oversubscribed_starts += 1  # overloaded run: start anyway, on busy nodes
        return nodes, max(earliest_s, min(ready_s, latest_s))

    def commit(self, draft: Draft, nodes: list[int], start_s: int, elapsed_s: int | None = None):
        if start_s >= self.end_s:
            draft.state = "PENDING"
            return
        if elapsed_s is None:
            elapsed_s = actual_elapsed_s(
                self.rng, draft.state, draft.req.duration_s, draft.timelimit_s
            )
        self.pools[draft.part.name].occupy(nodes, draft.shape.slots_per_node, start_s + elapsed_s)
        draft.start_s, draft.elapsed_s, draft.node_indices = start_s, elapsed_s, tuple(nodes)
        if start_s + elapsed_s >= self.end_s:
            draft.state, draft.elapsed_s = "RUNNING", self.end_s - start_s

    def materialise(self, draft: Draft) -> Job:
        job = self.job_line(draft)
        if draft.start_s is not None:
            job.steps = build_steps(self.rng, draft)
            if self.cluster.energy_plugin:
                assign_energy(self.rng, draft, job, self.energy_faults)
        return job

    def job_line(self, draft: Draft) -> Job:
        req, shape, part = draft.req, draft.shape, draft.part
        started = draft.start_s is not None
        state = draft.state
        if state == "CANCELLED":
            if draft.cancelled_by_uid is None:  # the user, or now and then root
                own_uid = self.cluster.uid_base + ALL_USERS.index(req.user)
                draft.cancelled_by_uid = 0 if chance(self.rng, 0.1) else own_uid
            state = f"CANCELLED by {draft.cancelled_by_uid}"
        gpus = shape.gpus_per_node * shape.nnodes
        cpus, mem_mb = shape.cpus_per_node * shape.nnodes, shape.mem_per_node_mb * shape.nnodes
        if started:
            end_s = None if draft.state == "RUNNING" else draft.start_s + draft.elapsed_s
        else:
            end_s = draft.cancel_end_s
        return Job(
            draft.job_id,
            draft.job_id_raw,
            req.name,
            req.user,
            req.account,
            part.name,
            req.qos,
            req.wckey,
            req.comment,
            hostlist(part, draft.node_indices) if started else "None assigned",
            shape.nnodes,
            cpus if started else 0,
            state,
            JOB_EXIT_CODE.get(draft.state, "0:0"),
            draft.submit_s,
            draft.start_s,
            end_s,
            draft.elapsed_s if started else 0,
            draft.timelimit,
            shape.req_mem,
            tres_text(shape.req_cpus, gpus, "", mem_mb, shape.nnodes, billing=shape.req_cpus),
            tres_text(cpus, gpus, part.gpu_type, mem_mb, shape.nnodes, billing=cpus)
            if started
            else "",
            kind=draft.kind,
            special_name=req.special_name,
        )

    def array_jobs(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        """Array tasks <master>_<n>; the tail that never started shows as one <master>_[a-b] line.

        JobIDRaw is unique per task; the last task keeps the master's own id (as in Slurm).
        """
        master, n_tasks = self.take_ids(req.array_tasks), req.array_tasks
        throttle = randint(self.rng, 4, 12)  # --array=1-N%throttle
        template = self.new_draft(req, "", "", submit_s)  # one sbatch: same shape and limit
        longest_s = (template.timelimit_s or DAY_S) - MINUTE_S
        task_ends_s: list[int] = []
        for task in range(1, n_tasks + 1):
            duration_s = int(req.duration_s * uniform(self.rng, 0.6, 1.4))
            task_req = replace(req, duration_s=min(longest_s, max(10 * MINUTE_S, duration_s)))
            raw_id = master if task == n_tasks else master + task
            draft = replace(
                template,
                req=task_req,
                job_id=f"{master}_{task}",
                job_id_raw=str(raw_id),
                kind="array",
                state=self.draw_state(req, template.timelimit_s),
            )
            not_before_s = task_ends_s[-throttle] if len(task_ends_s) >= throttle else 0
            self.schedule(draft, not_before_s)
            if draft.state == "PENDING":
                yield self.pending_array_line(draft, master, task, n_tasks)
                return
            task_ends_s.append(draft.start_s + draft.elapsed_s if draft.start_s else submit_s)
            yield self.materialise(draft)

    def pending_array_line(self, draft: Draft, master: int, task: int, n_tasks: int) -> Job:
        draft.job_id = f"{master}_[{task}-{n_tasks}]" if task < n_tasks else f"{master}_{task}"
        draft.job_id_raw = str(master)
        draft.start_s, draft.state = None, "PENDING"
        return self.job_line(draft)

    def het_jobs(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        """Heterogeneous job: +0 is a small CPU router/loader, +1 the GPU part; one start time."""
        base = self.take_ids(2)
        helper = replace(req, partition="cpu", nodes=1, gpus_per_node=0, cpus=8, srun_steps=1)
        gpu_req = replace(req, srun_steps=1)
        first = self.new_draft(helper, f"{base}+0", str(base), submit_s)
        second = self.new_draft(gpu_req, f"{base}+1", str(base + 1), submit_s)
        second.state, second.timelimit_s = first.state, first.timelimit_s
        second.timelimit = first.timelimit
        second.has_batch = False
        first.kind = second.kind = "het"
        earliest_s = submit_s + self.queue_wait_s(second)
        nodes0, start0 = self.place(first, earliest_s)
        nodes1, start1 = self.place(second, earliest_s)
        elapsed_s = actual_elapsed_s(self.rng, first.state, req.duration_s, first.timelimit_s)
        for draft, nodes in ((first, nodes0), (second, nodes1)):
            self.commit(draft, nodes, max(start0, start1), elapsed_s)
        first_job = self.materialise(first)
        second.cancelled_by_uid = first.cancelled_by_uid
        return iter([first_job, self.materialise(second)])

    def requeued_jobs(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        """A run that ended REQUEUED, then the rerun under the same JobID with a later Submit."""
        job_id = str(self.take_ids(1))
        first = self.new_draft(req, job_id, job_id, submit_s)
        first.state, first.kind = "REQUEUED", "requeue"
        self.schedule(first)
        yield self.materialise(first)
        if first.state != "REQUEUED":
            return  # still pending/running at the end of the window: not requeued yet
        rerun_submit_s = first.start_s + first.elapsed_s + randint(self.rng, 1, 5)
        second = replace(
            first,
            submit_s=rerun_submit_s,
            start_s=None,
            elapsed_s=0,
            node_indices=(),
            state=self.draw_state(req, first.timelimit_s),
        )
        if rerun_submit_s < self.end_s:
            self.schedule(second)
            yield self.materialise(second)
