"""textfile: *.prom files served as written; a broken file is skipped, never the scrape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agent.metrics.host import build_host_collector
from agent.metrics.host.textfile import TextfileError, parse_exposition
from agent.metrics.server import render_text
from tests.metrics.host.hosttree import FakeHost

GOOD = """# HELP backup_last_success_timestamp_seconds Last good backup.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds{job="db"} 1.7e+09
# TYPE backup_runs_total counter
backup_runs_total{job="db",result="ok"} 12
backup_runs_total{job="db",result="failed"} 1
# TYPE backup_duration_seconds summary
backup_duration_seconds{quantile="0.5"} 31
backup_duration_seconds_sum 400
backup_duration_seconds_count 12
raid_status{array="md0",path="C:\\\\x \\"q\\""} 1
"""


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def render(host: FakeHost, directory: Path) -> str:
    registry = CollectorRegistry()
    registry.register(
        build_host_collector(
            host.config(textfile_directory=directory, collectors={"textfile": True})
        )
    )
    return render_text(registry).decode()


def test_good_files_are_served_with_mtime_and_no_error(host: FakeHost, tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "backup.prom").write_text(GOOD)
    (directory / "ignored.txt").write_text("not_a_metric 1\n")
    os.utime(directory / "backup.prom", (1700000000, 1700000000))
    text = render(host, directory)
    assert "# HELP backup_last_success_timestamp_seconds Last good backup.\n" in text
    assert 'backup_last_success_timestamp_seconds{job="db"} 1.7e+09\n' in text
    assert "# TYPE backup_runs_total counter\n" in text
    assert 'backup_runs_total{job="db",result="failed"} 1.0\n' in text
    assert "# TYPE backup_duration_seconds summary\n" in text
    assert "backup_duration_seconds_count 12.0\n" in text
    assert "# TYPE raid_status untyped\n" in text
    assert f"# HELP raid_status Metric read from {directory / 'backup.prom'}\n" in text
    assert 'raid_status{array="md0",path="C:\\\\x \\"q\\""} 1.0\n' in text
    assert f'node_textfile_mtime_seconds{{file="{directory / "backup.prom"}"}} 1.7e+09\n' in text
    assert "node_textfile_scrape_error 0.0\n" in text
    assert "not_a_metric" not in text


def test_syntax_error_sets_scrape_error_and_the_rest_is_served(
    host: FakeHost, tmp_path: Path
) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "good.prom").write_text(GOOD)
    (directory / "broken.prom").write_text('ok_metric 1\nbroken{label="x" 2\n')
    (directory / "stamped.prom").write_text("with_timestamp 1 1700000000000\n")
    text = render(host, directory)
    assert "node_textfile_scrape_error 1.0\n" in text
    assert 'backup_runs_total{job="db",result="ok"} 12.0\n' in text
    # A broken file is skipped whole, including its good lines, and has no mtime.
    assert "ok_metric" not in text and "with_timestamp" not in text
    assert "broken.prom" not in text
    assert 'node_scrape_collector_success{collector="textfile"} 1.0\n' in text
    assert "node_cpu_seconds_total" in text  # other collectors unaffected


def test_unconfigured_directory_reports_only_no_error(host: FakeHost) -> None:
    registry = CollectorRegistry()
    registry.register(build_host_collector(host.config()))
    text = render_text(registry).decode()
    assert "node_textfile_scrape_error 0.0\n" in text
    assert "node_textfile_mtime_seconds" not in text


def test_missing_directory_is_an_error_not_a_failure(host: FakeHost, tmp_path: Path) -> None:
    text = render(host, tmp_path / "absent")
    assert "node_textfile_scrape_error 1.0\n" in text


def test_same_metric_in_two_files_is_merged(host: FakeHost, tmp_path: Path) -> None:
    directory = tmp_path / "textfile"
    directory.mkdir()
    (directory / "a.prom").write_text('# TYPE job_ok gauge\njob_ok{job="a"} 1\n')
    (directory / "b.prom").write_text('# TYPE job_ok gauge\njob_ok{job="b"} 0\n')
    text = render(host, directory)
    assert text.count("# TYPE job_ok gauge\n") == 1
    assert 'job_ok{job="a"} 1.0\n' in text and 'job_ok{job="b"} 0.0\n' in text
    assert "node_textfile_scrape_error 0.0\n" in text


@pytest.mark.parametrize(
    "text",
    [
        "bad-name 1\n",
        "metric\n",
        "metric abc\n",
        'metric{l="unterminated} 1\n',
        'metric{0bad="x"} 1\n',
        "# TYPE metric gauge\n# TYPE metric counter\nmetric 1\n",
        "metric 1\n# TYPE metric gauge\n",
        "# TYPE metric nonsense\nmetric 1\n",
        "metric 1\nmetric 2\n",
        "metric 1 2 3\n",
    ],
)
def test_parser_rejects_what_node_exporter_rejects(text: str) -> None:
    with pytest.raises(TextfileError):
        parse_exposition(text)


def test_parser_accepts_special_values_and_histograms() -> None:
    families = parse_exposition(
        "# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
        "up NaN\ndown +Inf\n"
    )
    assert [(f.name, f.type, len(f.samples)) for f in families] == [
        ("h", "histogram", 4),
        ("up", "untyped", 1),
        ("down", "untyped", 1),
    ]
