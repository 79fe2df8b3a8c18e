"""Fuzzed readers: random bytes and mutated real sample lines never crash a reader, and every
row read is accepted or quarantined (rows read = accepted + quarantined), file by file.

The budget is HYPOTHESIS_PROFILE's (tests/hostile.py): bounded and derandomised in `make test`,
a long random campaign in `make fuzz`. Memory bounds are checked on purpose-built extremes
(gzip bombs, huge fields, wide headers, deep JSON) in tests/test_limits.py.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from reporting.ingest.billing.dispatch import read_billing
from reporting.ingest.billing.vendor_carbon import read_vendor_carbon
from reporting.ingest.dcgm import read_dcgm
from reporting.ingest.opencost import read_opencost
from reporting.ingest.slurm import read_slurm
from tests.hostile import PAYLOADS, fuzz

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_ROWS = 6  # real lines kept per sample: enough variety, fast to read


def _head(path: Path, rows: int = SAMPLE_ROWS) -> bytes:
    lines = path.read_bytes().split(b"\n")
    return b"\n".join(lines[: rows + 1]) + b"\n"


SAMPLES: dict[str, bytes] = {
    "slurm": _head(FIXTURES / "slurm" / "hb-jobinfo_sacct.DERIVED_parsable2_with_header.psv", 12),
    "focus": _head(FIXTURES / "billing" / "focus-sample-data_1.0_focus_sample.csv"),
    "aws_cur": _head(FIXTURES / "billing" / "focus_converters_sample-anonymous-aws-cur-legacy.csv"),
    "gcp_billing": _head(FIXTURES / "billing" / "koku_gcp_202011_standard_export_with_credits.csv"),
    "azure_cost": _head(FIXTURES / "billing" / "finops-toolkit_EA_ActualCost_Small.csv"),
    "opencost": (FIXTURES / "k8s" / "opencost_swagger_allocation_example.raw.json").read_bytes(),
    "opencost_csv": (
        b"Date,Namespace,ControllerKind,ControllerName,Pod,Container,CPUCoreUsageAverage,"
        b"CPUCoreRequestAverage,RAMBytesUsageAverage,RAMBytesRequestAverage,GPUs,CPUCost,"
        b"RAMCost,NetworkCost,PVCost,GPUCost,TotalCost,Labels\n"
        b'2024-05-01,ml,deployment,llm,llm-0,srv,1.5,2,1e9,2e9,1,0.5,0.1,0,0,3,3.6,"{""team"":""nlp""}"\n'
        b"2024-05-02,ml,deployment,llm,llm-1,srv,0.5,1,1e9,2e9,0,0.2,0.1,0,0,0,0.3,\n"
    ),
    "dcgm": _head(FIXTURES / "k8s" / "datadog_dcgm_fixture_metrics.txt", 40),
    "dcgm_json": json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [
                    {
                        "metric": {
                            "__name__": "DCGM_FI_DEV_POWER_USAGE",
                            "Hostname": "n1",
                            "gpu": "0",
                            "UUID": "GPU-a",
                            "exported_pod": "p",
                        },
                        "values": [[1714521600, "300"], [1714521660, "301.5"]],
                    },
                ],
            },
        }
    ).encode(),
    "aws_carbon": (
        b"last_refresh_timestamp,location,model_version,payer_account_id,product_code,"
        b"region_code,total_lbm_emissions_unit,total_lbm_emissions_value,total_mbm_emissions_unit,"
        b"total_mbm_emissions_value,usage_account_id,usage_period_end,usage_period_start\n"
        b"2024-06-10 00:00:00Z,US East,v3.0.0,111111111111,AmazonEC2,us-east-1,MTCO2e,0.0123,"
        b"MTCO2e,0.002,222222222222,2024-04-01 00:00:00Z,2024-03-01 00:00:00Z\n"
        b"2024-06-10 00:00:00Z,Global,v3.0.0,111111111111,AmazonCloudFront,,MTCO2e,0.5,MTCO2e,,,"
        b"2024-03-31 00:00:00Z,2024-03-01 00:00:00Z\n"
    ),
    "gcp_carbon": (
        json.dumps(
            {
                "usage_month": "2024-03-01",
                "billing_account_id": "B-1",
                "project": {"id": "p1", "number": "1"},
                "service": {"description": "Compute"},
                "location": {"region": "europe-west4"},
                "carbon_model_version": 12,
                "carbon_footprint_total_kgCO2e": {"location_based": 1.5, "market_based": 0.2},
            }
        ).encode()
        + b"\n"
    ),
}

# Bytes that parsers care about, and the corpus: spliced in at random places.
TOKENS = [
    b"|", b",", b";", b'"', b"'", b"\n", b"\r\n", b"\r", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf",
    b"\xc3", b"{", b"}", b"[", b"]", b":", b"\\", b'\\"', b"=", b"NaN", b"Infinity", b"-1e309",
    b"1e308", b"9" * 40, b"-", b".", b"_", b"#", b"null", b"true", b"[[[[[[[[", b"{\"a\":" * 30,
    b"T", b"Z", b"+99:00", b"9999-99-99", b"0000-00-00T00:00:00", b"2024-02-30", b"00:00:-1",
    b"gres/gpu=", b"gres/gpu:a100=8", b"energy=", b"UNKNOWN", b"None",
    *(p.encode("utf-8") for p in PAYLOADS.values() if len(p) < 100),
]  # fmt: skip
HUGE = [b"H" * 140_000, b'"' + b"Q" * 140_000 + b'"']  # over csv's default 128 KiB field limit


@st.composite
def mutated(draw: st.DrawFn, sample: bytes) -> bytes:
    """Some real lines (header first, maybe repeated or dropped), then byte-level mutations."""
    lines = sample.split(b"\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    chosen = draw(st.lists(st.sampled_from(body), max_size=8)) if body else []
    data = bytearray(b"\n".join([header, *chosen]) + b"\n")
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["token", "token", "bytes", "delete", "huge"]))
        if operation == "token":
            data[position:position] = draw(st.sampled_from(TOKENS))
        elif operation == "bytes":
            data[position:position] = draw(st.binary(max_size=12))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif draw(st.integers(0, 9)) == 0:  # huge fields are slow: rarely
            data[position:position] = draw(st.sampled_from(HUGE))
    return bytes(data)


def inputs(sample: str) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=600), mutated(SAMPLES[sample]))


def _write(tmp_path: Path, name: str, data: bytes) -> dict[str, Path]:
    path = tmp_path / name
    path.write_bytes(data)
    return {name: path}


def _count(frame: pd.DataFrame, name: str, column: str = "source_file") -> int:
    return int((frame[column] == name).sum()) if len(frame) else 0


def _no_gpu_model(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    none = pd.Series(None, index=frame.index, dtype=object)
    return none, none


def _slurm(paths: dict[str, Path]) -> dict[str, tuple[int, int, int]]:
    read = read_slurm(paths, site="s", timezone="Europe/Amsterdam", delimiter=None, fields=None,
                      resolve_gpu=_no_gpu_model)  # fmt: skip
    return {
        name: (
            rows,
            int(read.usage.loc[read.usage["source_file"] == name, "lines_merged"].sum()),
            _count(read.quarantine, name),
        )
        for name, rows in read.rows_read.items()
    }


def _billing(kind: str) -> Callable[[dict[str, Path]], dict[str, tuple[int, int, int]]]:
    def read(paths: dict[str, Path]) -> dict[str, tuple[int, int, int]]:
        billing = read_billing(paths, kind)
        return {
            name: (rows, _count(billing.charges, name), _count(billing.quarantine, name))
            for name, rows in billing.rows_read.items()
        }

    return read


def _opencost(paths: dict[str, Path]) -> dict[str, tuple[int, int, int]]:
    read = read_opencost(paths, site="k", cluster="c")
    return {
        name: (rows, _count(read.usage, name), _count(read.quarantine, name))
        for name, rows in read.rows_read.items()
    }


def _dcgm(paths: dict[str, Path]) -> dict[str, tuple[int, int, int]]:
    scrape = {name: pd.Timestamp("2024-05-01T00:00Z") for name in paths}
    read = read_dcgm(paths, scrape_times=scrape)
    return {
        name: (rows, _count(read.samples, name), _count(read.quarantine, name))
        for name, rows in read.rows_read.items()
    }


def _vendor(kind: str) -> Callable[[dict[str, Path]], dict[str, tuple[int, int, int]]]:
    def read(paths: dict[str, Path]) -> dict[str, tuple[int, int, int]]:
        counts = {}
        for name, path in paths.items():
            rows, quarantine, rows_read = read_vendor_carbon(path, name, kind)
            counts[name] = (rows_read, len(rows), len(quarantine))
        return counts

    return read


def _conserved(counts: dict[str, tuple[int, int, int]]) -> None:
    assert counts, "the reader reported no file"
    for name, (read, accepted, quarantined) in counts.items():
        assert read == accepted + quarantined, f"{name}: {read} != {accepted} + {quarantined}"


@fuzz(3)
@given(data=inputs("slurm"))
def test_slurm_dump(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("slurm")
    _conserved(_slurm(_write(folder, "dump.psv", data)))


@fuzz(2)
@given(data=inputs("focus"), family=st.sampled_from(["billing", "focus"]))
def test_focus_export(tmp_path_factory, data: bytes, family: str) -> None:
    folder = tmp_path_factory.mktemp("focus")
    _conserved(_billing(family)(_write(folder, "focus.csv", data)))


@fuzz()
@given(data=inputs("aws_cur"))
def test_aws_cur_export(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("cur")
    _conserved(_billing("billing")(_write(folder, "cur.csv", data)))


@fuzz()
@given(data=inputs("gcp_billing"))
def test_gcp_billing_export(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("gcp")
    _conserved(_billing("gcp_billing")(_write(folder, "gcp.csv", data)))


@fuzz()
@given(data=inputs("azure_cost"), day_first=st.booleans())
def test_azure_cost_export(tmp_path_factory, data: bytes, day_first: bool) -> None:
    folder = tmp_path_factory.mktemp("azure")
    paths = _write(folder, "azure.csv", data)
    billing = read_billing(paths, "azure_cost", day_first=day_first)
    _conserved({
        name: (rows, _count(billing.charges, name), _count(billing.quarantine, name))
        for name, rows in billing.rows_read.items()
    })  # fmt: skip


@fuzz()
@given(data=inputs("focus"), compressed=st.booleans())
def test_billing_json_lines_and_gzip(tmp_path_factory, data: bytes, compressed: bool) -> None:
    """The same bytes as JSON lines, and gzip-compressed (whole or cut short)."""
    folder = tmp_path_factory.mktemp("jsonl")
    if compressed:
        packed = gzip.compress(data, mtime=0)
        paths = {
            **_write(folder, "whole.csv.gz", packed),
            **_write(folder, "cut.jsonl.gz", packed[: len(packed) // 2]),
        }
    else:
        paths = _write(folder, "lines.jsonl", data)
    _conserved(_billing("billing")(paths))


@fuzz(2)
@given(data=inputs("opencost"))
def test_opencost_json(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("opencost")
    _conserved(_opencost(_write(folder, "alloc.json", data)))


@fuzz()
@given(data=inputs("opencost_csv"))
def test_opencost_csv(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("opencost_csv")
    _conserved(_opencost(_write(folder, "export.csv", data)))


@fuzz(2)
@given(data=inputs("dcgm"))
def test_dcgm_scrape(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("dcgm")
    _conserved(_dcgm(_write(folder, "scrape.prom", data)))


@fuzz()
@given(data=inputs("dcgm_json"))
def test_dcgm_query_json(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("dcgm_json")
    _conserved(_dcgm(_write(folder, "dump.json", data)))


@fuzz()
@given(data=inputs("aws_carbon"), kind=st.sampled_from(["aws_carbon", "vendor_carbon"]))
def test_aws_carbon_export(tmp_path_factory, data: bytes, kind: str) -> None:
    folder = tmp_path_factory.mktemp("aws_carbon")
    _conserved(_vendor(kind)(_write(folder, "carbon.csv", data)))


@fuzz()
@given(data=inputs("gcp_carbon"))
def test_gcp_carbon_export(tmp_path_factory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("gcp_carbon")
    _conserved(_vendor("gcp_carbon")(_write(folder, "carbon.jsonl", data)))


DEEP = "@@deep@@"  # stands for a deeply nested value, spliced into the JSON text


@st.composite
def json_values(draw: st.DrawFn) -> object:
    """Odd JSON: wrong types where objects are expected, non-finite numbers, payloads, or DEEP."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
        st.sampled_from([*PAYLOADS.values(), DEEP]),
    )  # fmt: skip
    return draw(st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                             | st.dictionaries(st.text(max_size=10), inner, max_size=4)))  # fmt: skip


def _json_text(document: object, depth: int) -> bytes:
    """The document as JSON, DEEP replaced by `depth` nested arrays or objects (json.dumps
    itself would refuse to write them)."""
    deep = ("[" * depth + "1" + "]" * depth) if depth % 2 else ('{"a":' * depth + "1" + "}" * depth)
    return json.dumps(document, allow_nan=True).replace(f'"{DEEP}"', deep).encode()


DEPTHS = st.integers(1, 5000)


@fuzz(2)
@given(value=json_values(), where=st.sampled_from(["allocation", "properties", "labels", "data"]),
       depth=DEPTHS)  # fmt: skip
def test_opencost_odd_json(tmp_path_factory, value: object, where: str, depth: int) -> None:
    allocation: dict[str, object] = {"name": "ns/pod", "properties": {"namespace": "ns"},
                                     "window": {"start": "2024-05-01T00:00:00Z",
                                                "end": "2024-05-02T00:00:00Z"}}  # fmt: skip
    document: dict[str, object] = {"code": 200, "data": [{"ns/pod": allocation}]}
    if where == "allocation":
        document["data"] = [{"ns/pod": value}]
    elif where == "properties":
        allocation["properties"] = value
    elif where == "labels":
        allocation["properties"] = {"namespace": "ns", "labels": value}
    else:
        document["data"] = value
    folder = tmp_path_factory.mktemp("odd")
    _conserved(_opencost(_write(folder, "alloc.json", _json_text(document, depth))))


@fuzz(2)
@given(value=json_values(), where=st.sampled_from(["metric", "values", "point", "label"]),
       depth=DEPTHS)  # fmt: skip
def test_dcgm_odd_json(tmp_path_factory, value: object, where: str, depth: int) -> None:
    series: dict[str, object] = {"metric": {"__name__": "DCGM_FI_DEV_POWER_USAGE", "Hostname": "n",
                                            "gpu": "0"}, "values": [[1714521600, "1"]]}  # fmt: skip
    if where == "metric":
        series["metric"] = value
    elif where == "values":
        series["values"] = value
    elif where == "point":
        series["values"] = [value, [value, "1"], [1714521600, value]]
    else:
        series["metric"] = {"__name__": "DCGM_FI_DEV_POWER_USAGE", "Hostname": value, "gpu": value}
    document = {"status": "success", "data": {"result": [series]}}
    folder = tmp_path_factory.mktemp("odd_dcgm")
    _conserved(_dcgm(_write(folder, "dump.json", _json_text(document, depth))))


@fuzz(2)
@given(value=json_values(), key=st.sampled_from(["Tags", "BilledCost", "ChargePeriodStart", "x"]),
       depth=DEPTHS)  # fmt: skip
def test_billing_json_lines_odd_values(
    tmp_path_factory, value: object, key: str, depth: int
) -> None:
    line = {"BilledCost": "1", "BillingCurrency": "USD", "ChargePeriodStart": "2024-05-01",
            "ChargePeriodEnd": "2024-05-02", "ProviderName": "AWS", "ServiceName": "EC2",
            "ChargeCategory": "Usage", "BillingPeriodStart": "2024-05-01", "EffectiveCost": "1",
            key: value}  # fmt: skip
    folder = tmp_path_factory.mktemp("odd_jsonl")
    text = _json_text(line, depth) + b"\n" + _json_text(value, depth) + b"\n"
    _conserved(_billing("billing")(_write(folder, "lines.jsonl", text)))


PARQUET_VALUES = {
    "text": st.one_of(st.none(), st.text(max_size=30), st.sampled_from(list(PAYLOADS.values()))),
    "number": st.one_of(st.none(), st.floats(), st.integers(-(2**62), 2**62).map(float)),
    "list": st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=3)),
    "map": st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)),
}  # fmt: skip


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    """A FOCUS-like table with odd types and values, sometimes odd column names too."""
    rows = draw(st.integers(0, 6))
    names = ["BilledCost", "BillingCurrency", "ChargePeriodStart", "ProviderName", "Tags"]
    names += draw(st.lists(st.text(min_size=1, max_size=12), max_size=3, unique=True))
    columns = {}
    for name in dict.fromkeys(names):
        kind = draw(st.sampled_from(sorted(PARQUET_VALUES)))
        values = draw(st.lists(PARQUET_VALUES[kind], min_size=rows, max_size=rows))
        if kind == "map":
            columns[name] = pa.array([None if v is None else list(v.items()) for v in values],
                                     type=pa.map_(pa.string(), pa.string()))  # fmt: skip
        else:
            columns[name] = pa.array(values)
    return pa.table(columns) if columns else pa.table({"x": pa.array([], pa.string())})


@fuzz()
@given(table=parquet_tables(), cut=st.integers(0, 3))
def test_billing_parquet(tmp_path_factory, table: pa.Table, cut: int) -> None:
    """Odd parquet, whole or truncated (cut > 0): never a crash, every row accounted for."""
    folder = tmp_path_factory.mktemp("parquet")
    path = folder / "export.parquet"
    pq.write_table(table, path)
    if cut:
        path.write_bytes(path.read_bytes()[: -cut * 7])
    _conserved(_billing("billing")({"export.parquet": path}))
