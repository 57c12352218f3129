"""The benchmark suite keeps running and keeps producing well-formed results.

Each scenario runs in quick mode (seconds, small counts) exactly as a user would run it,
``python -m benchmarks run SCENARIO --quick --out DIR --check``, and its JSON, Markdown
and PNG are checked for shape. No figure is asserted: a timing on a shared CI machine
proves nothing, and the budgets are checked by ``--check`` (exit 0 or 1, never a crash).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import SCENARIOS
from benchmarks.budgets import load
from benchmarks.report import PNG_MAGIC
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parent.parent
MACHINE_KEYS = {
    "cpu_model",
    "logical_cpus",
    "memory_mib",
    "kernel",
    "os",
    "python",
    "docker",
    "load_average_start",
    "load_average_end",
}


def benchmarks(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_well_formed(out: Path, scenario: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / f"{scenario}.json").read_text())
    assert document["scenario"] == scenario
    assert document["quick"] is True
    assert set(document["machine"]) >= MACHINE_KEYS
    assert document["machine"]["logical_cpus"] >= 1
    assert document["summary"], "a result without headline figures"
    budgets = load()[scenario]
    assert [v["metric"] for v in document["budget"]] == [b.metric for b in budgets]
    for verdict in document["budget"]:
        assert isinstance(verdict["value"], int | float), f"{verdict['metric']} not measured"
        assert isinstance(verdict["ok"], bool)
    for table in document["tables"]:
        assert table["rows"] and all(len(r) == len(table["columns"]) for r in table["rows"])
    page = (out / f"{scenario}.md").read_text()
    assert page.startswith(f"## {document['title']}")
    assert "Machine: " in page and document["machine"]["kernel"] in page
    assert "| figure | measured | budget | verdict |" in page
    assert f"![{scenario}]({scenario}.png)" in page
    png = (out / f"{scenario}.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    return document


def run_quick(scenario: str, out: Path) -> subprocess.CompletedProcess[str]:
    done = benchmarks("run", scenario, "--quick", "--out", str(out), "--check")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1), done.stdout + done.stderr
    if done.returncode == 1:
        assert "over budget:" in done.stderr
    return done


def test_log_ceiling_quick_run_writes_json_markdown_and_png(tmp_path: Path) -> None:
    run_quick("log_ceiling", tmp_path)
    document = assert_well_formed(tmp_path, "log_ceiling")
    assert set(document["summary"]["formats"]) == {"json", "logfmt", "nest", "text", "mixed"}
    assert document["details"]["profile"]["by_area"]


@pytest.mark.docker
def test_scrape_cost_quick_run_compares_with_node_exporter_in_the_same_run(
    tmp_path: Path, docker_client: Any
) -> None:
    require_binary("prometheus-node-exporter")
    run_quick("scrape_cost", tmp_path)
    document = assert_well_formed(tmp_path, "scrape_cost")
    host = document["summary"]["host"]
    assert host["agent"]["cpu_ms_per_scrape"] >= 0 and host["node_exporter"]["bytes"] > 0
    # the same scrape over TLS with basic auth, both servers reading one web config
    tls = document["summary"]["host_tls"]
    assert tls["agent"]["bytes"] > 0 and tls["node_exporter"]["bytes"] > 0
    assert "TLS + basic auth" in (tmp_path / "scrape_cost.md").read_text()


@pytest.mark.docker
@pytest.mark.parametrize(
    "scenario", ["reference_host", "app_impact", "loki_outage", "kill_storm", "startup"]
)
def test_docker_scenario_quick_run_writes_well_formed_results(
    scenario: str, tmp_path: Path, docker_client: Any
) -> None:
    run_quick(scenario, tmp_path)
    assert_well_formed(tmp_path, scenario)


def test_check_names_the_figure_over_budget_and_exits_1(tmp_path: Path) -> None:
    document = {
        "scenario": "loki_outage",
        "quick": False,
        "summary": {"peak_rss_mib": 50.0, "lost_lines": 3, "drain_seconds": 5.0},
    }
    (tmp_path / "loki_outage.json").write_text(json.dumps(document))
    done = benchmarks("check", str(tmp_path))
    assert done.returncode == 1
    assert "lost_lines = 3" in done.stderr and "OVER" in done.stderr
    assert "peak_rss_mib" not in done.stderr


def test_check_fails_a_budget_whose_figure_is_missing(tmp_path: Path) -> None:
    document = {"scenario": "app_impact", "quick": False, "summary": {}}
    (tmp_path / "app_impact.json").write_text(json.dumps(document))
    done = benchmarks("check", str(tmp_path))
    assert done.returncode == 1
    assert "overhead_median not measured" in done.stderr


def test_check_within_budget_exits_0(tmp_path: Path) -> None:
    document = {
        "scenario": "app_impact",
        "quick": False,
        "summary": {"overhead_median": 0.004, "overhead_cpu_accounting": 0.008},
    }
    (tmp_path / "app_impact.json").write_text(json.dumps(document))
    done = benchmarks("check", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "within its budget" in done.stdout


def test_every_scenario_has_budgets() -> None:
    assert set(load()) == set(SCENARIOS)


def test_benchmarks_import_neither_tests_nor_pytest() -> None:
    """A benchmark run is a user's command, not a test session: no ``tests/``, no pytest."""
    modules = ["benchmarks.__main__", *SCENARIOS.values()]
    probe = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m == 'pytest' or m.split('.')[0] == 'tests')\n"
        "print(','.join(bad))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_receiver_counts_json_and_gzip_pushes_like_protobuf() -> None:
    """Fluent Bit's loki output pushes JSON: the benchmark receiver must count it too."""
    import gzip

    import orjson

    from agent.logs.loki_encode import encode_protobuf
    from agent.logs.model import PushBatch, PushEntry, StreamLabels
    from benchmarks.receiver import _streams

    batch = PushBatch()
    batch.add(StreamLabels.of({"container": "a"}), PushEntry(1, "one seq=1", ()))
    batch.add(StreamLabels.of({"container": "a"}), PushEntry(2, "two seq=2", (("k", "v"),)))
    expected = [('{container="a"}', ["one seq=1", "two seq=2"])]
    assert _streams(encode_protobuf(batch).body, "application/x-protobuf") == expected
    body = orjson.dumps(
        {
            "streams": [
                {
                    "stream": {"container": "a"},
                    "values": [["1", "one seq=1"], ["2", "two seq=2", {"k": "v"}]],
                }
            ]
        }
    )
    assert _streams(body, "application/json") == expected
    assert _streams(gzip.compress(body), "application/json") == expected


def test_corpus_lines_are_what_docker_writes_and_join_back_whole() -> None:
    from agent.logs.dockerjson import PartialLineBuffer
    from benchmarks.corpus import LONG_EVERY, corpus_line, docker_records, records_per_line

    lines = [corpus_line(i) for i in range(2 * LONG_EVERY)]
    assert len({line[:1] for line in lines}) > 2  # JSON, text, colours...
    long = lines[LONG_EVERY - 1]
    assert len(long) > 16 * 1024 and records_per_line(long) >= 2
    data = b"".join(docker_records(line, 10**18 + i, "stdout") for i, line in enumerate(lines))
    assert data.count(b"\n") == sum(records_per_line(line) for line in lines)
    got = PartialLineBuffer().feed_chunk(data, 0).lines
    assert [line.line for line in got] == lines


def test_thread_cpu_seconds_counts_every_thread_in_nanoseconds() -> None:
    from benchmarks.procstat import cpu_seconds, thread_cpu_seconds

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    pid = os.getpid()
    before, before_ticks = thread_cpu_seconds(pid), cpu_seconds(pid)
    worker = threading.Thread(target=spin, args=(0.05,))
    worker.start()
    spin(0.05)
    worker.join()  # the worker exits: only this thread's time is still counted
    after, after_ticks = thread_cpu_seconds(pid), cpu_seconds(pid)
    assert 0.04 <= after - before <= after_ticks - before_ticks + 0.03
    assert after - before != round(after - before, 2)  # not a multiple of a clock tick


@pytest.mark.docker
def test_a_run_removes_what_an_interrupted_run_left_and_cleans_up_on_sigterm(
    tmp_path: Path, docker_client: Any
) -> None:
    from benchmarks.harness import BUSYBOX_IMAGE, CONTAINER_PREFIX

    def ours() -> list[str]:
        listed = docker_client.containers.list(all=True, filters={"name": CONTAINER_PREFIX})
        return [c.name for c in listed if c.name.startswith(CONTAINER_PREFIX)]

    docker_client.containers.run(
        BUSYBOX_IMAGE, ["sleep", "600"], name=f"{CONTAINER_PREFIX}leftover", detach=True,
        network_mode="none",
    )  # fmt: skip
    args = ["run", "reference_host", "--quick", "--out", str(tmp_path)]
    run = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names = ours()
            if names and f"{CONTAINER_PREFIX}leftover" not in names:
                break  # the leftover is gone and this run's writers are up
            time.sleep(0.2)
        else:
            raise AssertionError(f"no writers, or the leftover stayed: {ours()}")
        run.terminate()
        stdout, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert "removed 1 nexo-bench-* containers an interrupted run left behind" in stdout
    assert ours() == []
