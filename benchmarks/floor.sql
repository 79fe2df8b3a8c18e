-- The floor: modelled energy, location-based carbon and rate-card cost per team and UTC day,
-- straight from raw atlas `sacct --parsable2` dumps, in one DuckDB query. It is the benchmark's
-- yardstick: parsing + arithmetic + grouping and nothing else (no validation, no quarantine
-- reasons, no ledger, no report), so `greenops run` ÷ this is the price of everything else.
--
-- Run it with benchmarks/floor.py, which sets the variable `sacct_files` (a glob) first; or in
-- the duckdb shell: SET VARIABLE sacct_files = 'data/*.psv'; .read benchmarks/floor.sql
--
-- The model is reporting/energy.py's for Slurm runs without a plausible measurement (atlas
-- has no energy plugin), with the atlas factors written in as constants:
--   IT W = GPUs × (W_min + u_gpu × (W_max − W_min)) + CPUs × (W_min + u_cpu × (W_max − W_min))
--          + ReqMem GB × 0.3725 W/GB                          (data/methodology.csv)
--   u_gpu = max over the run's steps (not extern) of gres/gpuutil ÷ (100 × step GPUs), ≤ 1;
--           none → 1.0 (default_gpu_util_ratio)
--   u_cpu = TotalCPU ÷ (Elapsed × NCPUS), ≤ 1, where TotalCPU > 0; else 1.0
--   kWh = W × Elapsed h ÷ 1000; facility kWh = × PUE 1.3 (sample_logs/greenops.toml, atlas)
--   kg CO2e = facility kWh × 270.489 g/kWh ÷ 1000 (US-SRVC, data/grid_intensity.csv)
--   cost = GPU-h, core-h and ReqMem GB-h times the partition's rate card (greenops.toml)
-- Each run is split over the UTC days it ran on in proportion to its time on each day
-- (reporting/attribute.py split_by_day). Team from the account, as the owner rules do.
-- What it leaves out, and why the totals still agree, is in benchmarks/RESULTS.md.

SET TimeZone = 'UTC';

-- `[DD-[HH:]]MM:SS[.mmm]` → its parts (all '' when the text is not a duration), and seconds.
CREATE OR REPLACE TEMP MACRO duration_parts(text) AS regexp_extract(
    trim(text), '^(?:(?:(\d+)-)?(\d+):)?(\d+):(\d+(?:\.\d+)?)$', ['d', 'h', 'm', 's']);
CREATE OR REPLACE TEMP MACRO duration_s(text) AS (
    SELECT CASE WHEN p.m <> '' THEN
        coalesce(TRY_CAST(nullif(p.d, '') AS DOUBLE), 0) * 86400
        + coalesce(TRY_CAST(nullif(p.h, '') AS DOUBLE), 0) * 3600
        + TRY_CAST(p.m AS DOUBLE) * 60 + TRY_CAST(p.s AS DOUBLE)
    END FROM (SELECT duration_parts(text) AS p)
);

-- One `key=value` of a TRES list (`billing=8,cpu=8,gres/gpu:a100=1,gres/gpu=1,mem=10G`).
CREATE OR REPLACE TEMP MACRO tres(text, key) AS
    nullif(regexp_extract(text, '(?:^|,)' || key || '=([^,]*)', 1), '');

-- Naive sacct local time (atlas runs sacct in America/New_York) → UTC instant.
CREATE OR REPLACE TEMP MACRO utc(text) AS
    timezone('America/New_York', TRY_STRPTIME(trim(text), '%Y-%m-%dT%H:%M:%S'));

WITH lines AS (
    SELECT JobID, Account, Partition, NNodes, NCPUS, State, Start, "End", Elapsed, TotalCPU,
           ReqMem, AllocTRES, TRESUsageInTot
    FROM read_csv(getvariable('sacct_files'), delim = '|', header = true, quote = '',
                  escape = '', all_varchar = true, ignore_errors = true)
),
jobs AS (
    SELECT JobID AS job_id, Account AS account, Partition AS partition,
           upper(rtrim(split_part(trim(State), ' ', 1), '+')) AS state,
           utc(Start) AS started_at, utc("End") AS ended_at,
           duration_s(Elapsed) AS duration_s, duration_s(TotalCPU) AS cpu_time_s,
           coalesce(TRY_CAST(NCPUS AS DOUBLE), TRY_CAST(tres(AllocTRES, 'cpu') AS DOUBLE)) AS n_cpus,
           TRY_CAST(NNodes AS DOUBLE) AS n_nodes,
           coalesce(TRY_CAST(tres(AllocTRES, 'gres/gpu') AS DOUBLE), 0) AS n_gpus,
           regexp_extract(AllocTRES, '(?:^|,)gres/gpu:([^,=]+)=', 1) AS gpu_type,
           regexp_extract(ReqMem, '^(\d+(?:\.\d+)?)([KMGTP]?)([nc]?)$', ['num', 'unit', 'per']) AS mem
    FROM lines
    WHERE NOT contains(JobID, '.')
),
steps AS (
    SELECT split_part(JobID, '.', 1) AS job_id, utc(Start) AS started_at,
           least(TRY_CAST(tres(TRESUsageInTot, 'gres/gpuutil') AS DOUBLE)
                 / (100 * TRY_CAST(tres(AllocTRES, 'gres/gpu') AS DOUBLE)), 1.0) AS gpu_util
    FROM lines
    WHERE contains(JobID, '.') AND split_part(JobID, '.', 2) <> 'extern'
),
-- A requeued job prints its JobID once per run; a step belongs to the latest run started
-- before it (greenops uses line order; the start time says the same).
step_util AS (
    SELECT j.job_id, j.started_at, max(s.gpu_util) AS gpu_util
    FROM steps s ASOF JOIN jobs j ON s.job_id = j.job_id AND s.started_at >= j.started_at
    GROUP BY ALL
),
runs AS (
    SELECT j.*, u.gpu_util,
           TRY_CAST(nullif(mem.num, '') AS DOUBLE)
             * CASE mem.unit WHEN 'K' THEN 1024.0 WHEN 'M' THEN 1024.0 ^ 2 WHEN 'G' THEN 1024.0 ^ 3
                             WHEN 'T' THEN 1024.0 ^ 4 WHEN 'P' THEN 1024.0 ^ 5 ELSE 1 END
             / 1024.0 ^ 3
             * CASE mem.per WHEN 'c' THEN n_cpus WHEN 'n' THEN n_nodes ELSE 1 END AS mem_gb,
           CASE WHEN cpu_time_s > 0 AND duration_s > 0
                THEN least(cpu_time_s / (duration_s * n_cpus), 1.0) END AS cpu_util,
           -- GPU power from the partition's GPU model (gpu_types in greenops.toml, W from
           -- data/gpu_power.csv); a GPU type the partition does not map is quarantined there.
           CASE WHEN n_gpus = 0 THEN 'none'
                WHEN partition = 'h100' AND gpu_type = 'h100' THEN 'H100-SXM5-80GB'
                WHEN partition = 'a100' AND gpu_type = 'a100' THEN 'A100-SXM4-80GB' END AS gpu_model
    FROM jobs j
    LEFT JOIN step_util u USING (job_id, started_at)
    WHERE state IN ('COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED', 'OUT_OF_MEMORY', 'NODE_FAIL',
                    'PREEMPTED', 'BOOT_FAIL', 'DEADLINE', 'REVOKED', 'REQUEUED')
      AND ended_at IS NOT NULL AND duration_s IS NOT NULL
      AND (started_at IS NULL OR ended_at >= started_at)
),
modelled AS (
    SELECT *,
           duration_s / 3600 AS hours,
           (CASE gpu_model WHEN 'H100-SXM5-80GB' THEN n_gpus * (79.1 + coalesce(gpu_util, 1.0) * (700 - 79.1))
                           WHEN 'A100-SXM4-80GB' THEN n_gpus * (46 + coalesce(gpu_util, 1.0) * (400 - 46))
                           ELSE 0 END
            -- W per CPU thread: h100 nodes are Xeon 8480+ (0–3.125), the rest EPYC 7763
            + coalesce(n_cpus, 0) * CASE partition WHEN 'h100' THEN 3.125 * coalesce(cpu_util, 1.0)
                                   ELSE 0.4873 + coalesce(cpu_util, 1.0) * (2.1875 - 0.4873) END
            + coalesce(mem_gb, 0) * 0.3725) * duration_s / 3600 / 1000 AS it_energy_kwh
    FROM runs
    WHERE gpu_model IS NOT NULL
),
priced AS (
    SELECT *,
           it_energy_kwh * 1.3 AS facility_energy_kwh,
           it_energy_kwh * 1.3 * 270.489 / 1000 AS co2e_location_kg,
           CASE partition WHEN 'h100' THEN 2.50 * n_gpus * hours
                          WHEN 'a100' THEN 1.40 * n_gpus * hours
                          WHEN 'cpu' THEN 0.012 * coalesce(n_cpus, 0) * hours
                                          + 0.0005 * coalesce(mem_gb, 0) * hours END AS cost,
           CASE account WHEN 'pretrain' THEN 'foundation-models' WHEN 'posttrain' THEN 'alignment'
                        WHEN 'serving' THEN 'inference-platform' WHEN 'evals' THEN 'evaluation'
                        WHEN 'vision' THEN 'vision' WHEN 'research' THEN 'research'
                        ELSE 'unallocated' END AS team,
           coalesce(started_at, ended_at) AS window_start,
           epoch(ended_at) - epoch(coalesce(started_at, ended_at)) AS window_s
    FROM modelled
),
sliced AS (
    SELECT *,
           CASE WHEN window_s > 0
                THEN (epoch(least(ended_at, day + INTERVAL 1 DAY)) - epoch(greatest(window_start, day)))
                     / window_s
                ELSE 1.0 END AS ratio
    FROM (
        SELECT *, unnest(generate_series(
            date_trunc('day', window_start),
            date_trunc('day', CASE WHEN window_s > 0 THEN ended_at - INTERVAL 1 SECOND ELSE ended_at END),
            INTERVAL 1 DAY)) AS day
        FROM priced
    )
)
SELECT team, CAST(day AS DATE) AS day,
       sum(it_energy_kwh * ratio) AS it_energy_kwh,
       sum(facility_energy_kwh * ratio) AS facility_energy_kwh,
       sum(co2e_location_kg * ratio) AS co2e_location_kg,
       sum(cost * ratio) AS cost,
       count(*) AS slices
FROM sliced
GROUP BY ALL
ORDER BY team, day;
