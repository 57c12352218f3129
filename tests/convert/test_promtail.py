"""``nexo-agent convert promtail``: real Promtail configs in, configs nexo-agent accepts out,
and an honest report (with input lines) of everything that did not carry over."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.convert.globs import expand_braces
from agent.convert.promtail import Conversion, convert_text, nexo_positions_path
from agent.convert.promtail_docker import container_name_globs
from agent.convert.promtail_stages import Untranslatable, combine_selectors, go_duration
from agent.logs.positions import PositionsStore
from agent.logs.tail import FileFollower, Fingerprint

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALL_FIXTURES = sorted(FIXTURES.glob("*.yaml"))

# (input line, input key) of every item each fixture cannot carry over, in report order.
EXPECTED_OMITTED: dict[str, list[tuple[int, str]]] = {
    "compose_docker_sd.yaml": [],
    "docs_docker_sd.yaml": [],
    "docs_static_config.yaml": [],
    "promtail_docker_config.yaml": [],
    "promtail_local_config.yaml": [],
    "promtail_local_limit_config.yaml": [],
    "docs_journal_syslog.yaml": [
        (16, "scrape_configs[0].journal"),
        (24, "scrape_configs[1].syslog"),
    ],
    "helm_promtail_default.yaml": [(22, "scrape_configs[0].kubernetes_sd_configs")],
    "docs_stages.yaml": [
        (45, "scrape_configs[0].pipeline_stages[5].drop"),  # source: [level, msg]
        (66, "scrape_configs[0].pipeline_stages[11].template"),  # ToLower
        (70, "scrape_configs[0].pipeline_stages[12].tenant"),
        (73, "scrape_configs[0].pipeline_stages[13].limit"),  # by_label_name
        (85, "scrape_configs[0].pipeline_stages[16].replace"),  # Hash template
        (126, "scrape_configs[0].pipeline_stages[23].pack"),
    ],
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def convert(text: str) -> Conversion:
    return convert_text(text, "promtail.yaml", today=datetime.date(2026, 1, 2))


def omitted(conv: Conversion) -> list[tuple[int, str]]:
    return [(f.line, f.where) for f in conv.report.of_kind("omitted")]


def pipeline_stages(conv: Conversion) -> list[dict[str, Any]]:
    stages: list[dict[str, Any]] = conv.data["logs"].get("pipeline", {}).get("stages", [])
    return stages


def docker_config(pipeline: str = "", relabel: str = "", files: str = "") -> str:
    """A docker_sd Promtail config around the given YAML snippets (indented for them)."""
    text = (
        "clients: [{url: 'http://loki:3100/loki/api/v1/push'}]\n"
        "scrape_configs:\n"
        "  - job_name: docker\n"
        "    docker_sd_configs: [{host: 'unix:///var/run/docker.sock'}]\n"
    )
    if relabel:
        text += "    relabel_configs:\n" + relabel
    if pipeline:
        text += "    pipeline_stages:\n" + pipeline
    return text + files


# ------------------------------------------------------------------ real-world fixtures


def test_every_fixture_says_where_it_comes_from_and_has_expectations() -> None:
    assert {p.name for p in ALL_FIXTURES} == set(EXPECTED_OMITTED)
    for path in ALL_FIXTURES:
        assert path.read_text().startswith("# Source: "), path.name


@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=lambda p: p.stem)
def test_fixture_converts_and_the_result_passes_check_config(fixture: Path, tmp_path: Path) -> None:
    out = tmp_path / "nexo.yaml"
    result = run_cli("convert", "promtail", str(fixture), "-o", str(out), "--allow-partial")
    assert result.returncode == 0, result.stderr
    assert "does not load" not in result.stderr
    assert "could not be checked" not in result.stderr  # every stage type exists
    check = run_cli("--config", str(out), "--check-config")
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=lambda p: p.stem)
def test_report_lists_exactly_the_untranslatable_items_with_their_lines(fixture: Path) -> None:
    conv = convert_text(fixture.read_text(), fixture.name)
    assert omitted(conv) == EXPECTED_OMITTED[fixture.name], conv.report.render()
    lines = fixture.read_text().splitlines()
    for line, where in omitted(conv):
        # The line holds the key the report names (a stage's type, a discovery key).
        assert where.rsplit(".", 1)[-1] in lines[line - 1], (line, where)


@pytest.mark.parametrize("fixture", ALL_FIXTURES, ids=lambda p: p.stem)
def test_commented_output_loads_back_to_the_converted_data(fixture: Path) -> None:
    conv = convert_text(fixture.read_text(), fixture.name)
    rendered = conv.render()
    assert yaml.safe_load(rendered) == conv.data
    assert rendered.startswith(
        f"# nexo-agent config converted from the Promtail config {fixture.name}"
    )


def test_helm_chart_default_is_reported_as_untranslatable_not_guessed() -> None:
    fixture = FIXTURES / "helm_promtail_default.yaml"
    conv = convert_text(fixture.read_text(), fixture.name)
    assert conv.data["logs"]["loki"] == {"url": "http://loki-gateway/loki/api/v1/push"}
    assert conv.data["logs"]["positions_file"] == "/run/promtail/positions.nexo.json"
    assert conv.data["logs"]["docker"] == {"enabled": False}
    assert "files" not in conv.data["logs"] and "pipeline" not in conv.data["logs"]
    (finding,) = conv.report.of_kind("omitted")
    assert "relabel_configs and pipeline_stages go with it" in finding.message


def test_compose_host_translates_completely() -> None:
    conv = convert((FIXTURES / "compose_docker_sd.yaml").read_text())
    assert conv.report.complete
    data = conv.data
    assert data["log_level"] == "warning"
    assert data["docker"] == {
        "resync_interval": "15s",
        "include": {"labels": ["com.docker.compose.project=shop"]},
        "exclude": {"names": ["shop-migrate-*", "shop-seed-*"]},
    }
    assert data["logs"]["loki"] == {
        "url": "https://loki.example.com/loki/api/v1/push",
        "tenant_id": "shop",
        "basic_auth": {"username": "shop-promtail", "password_file": "/run/secrets/loki_password"},
        "tls": {"ca_file": "/etc/ssl/loki-ca.pem", "server_name": "loki.example.com"},
        "batch_wait": "2s",
        "batch_size": 524288,
        "timeout": "15s",
        "backoff": {"min_period": "1s", "max_period": "2m", "max_retries": 20},
    }
    pipeline = data["logs"]["pipeline"]
    assert pipeline["docker_labels"] == ["team"]
    assert pipeline["static_labels"] == {"job": "shop", "env": "production"}
    types = [next(iter(s)) for s in pipeline["stages"]]
    assert types == [
        "multiline",
        "json",
        "labels",
        "structured_metadata",
        "timestamp",
        "drop",
        "drop",
        "sample",
        "replace",
        "metrics",
        "metrics",
        "label_drop",
        "output",
    ]
    stages = pipeline["stages"]
    assert stages[1]["json"]["expressions"]["level"] == "level"  # `level:` spelled out
    assert stages[7]["sample"] == {
        "match": '{compose_service="nginx"} |= "GET /static/"',
        "rate": 0.1,
    }
    assert stages[9]["metrics"]["match"] == '{compose_service="payments"}'
    assert stages[9]["metrics"]["prefix"] == "promtail_custom_"  # names as Promtail's
    assert stages[9]["metrics"]["metrics"]["payments_total"]["labels"] == [
        "container",
        "compose_service",
        "level",
    ]


# --------------------------------------------------------------------------- exit codes


def test_complete_conversion_exits_0_and_writes_to_stdout_without_o() -> None:
    result = run_cli("convert", "promtail", str(FIXTURES / "compose_docker_sd.yaml"))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["logs"]["loki"]["tenant_id"] == "shop"
    assert "not translated" not in result.stderr


def test_partial_conversion_exits_1_and_still_writes_the_config(tmp_path: Path) -> None:
    out = tmp_path / "nexo.yaml"
    fixture = FIXTURES / "helm_promtail_default.yaml"
    result = run_cli("convert", "promtail", str(fixture), "-o", str(out))
    assert result.returncode == 1
    assert f"{fixture}:22: scrape_configs[0].kubernetes_sd_configs:" in result.stderr
    assert out.exists()
    allowed = run_cli("convert", "promtail", str(fixture), "-o", str(out), "--allow-partial")
    assert allowed.returncode == 0
    assert f"{fixture}:22: scrape_configs[0].kubernetes_sd_configs:" in allowed.stderr


@pytest.mark.parametrize(
    "text", ["clients: [{url: x}\n", "- just\n- a list\n", "a: {b: 1}\na: [\n"]
)
def test_broken_input_exits_2_without_a_traceback(tmp_path: Path, text: str) -> None:
    path = tmp_path / "promtail.yaml"
    path.write_text(text)
    result = run_cli("convert", "promtail", str(path), "-o", str(tmp_path / "out.yaml"))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_missing_input_exits_2(tmp_path: Path) -> None:
    result = run_cli("convert", "promtail", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


# ------------------------------------------------------------------ clients, positions


def test_extra_clients_and_unknown_options_are_reported_with_lines() -> None:
    conv = convert(
        "clients:\n"
        "  - url: http://a:3100/loki/api/v1/push\n"
        "    bearer_token_file: /run/token\n"
        "    proxy_url: http://proxy:3128\n"
        "    external_labels: {host: web1, dc: x}\n"
        "  - url: http://b:3100/loki/api/v1/push\n"
        "wal: {enabled: true}\n"
        "target_config: {sync_period: 10s}\n"
    )
    assert omitted(conv) == [
        (6, "clients[1]"),
        (4, "clients[0].proxy_url"),
        (7, "wal"),
    ]
    assert conv.data["logs"]["loki"] == {
        "url": "http://a:3100/loki/api/v1/push",
        "bearer_token_file": "/run/token",
    }
    # host is nexo's own label: a fixed value for it goes through a static_labels stage.
    assert conv.data["logs"]["pipeline"]["static_labels"] == {"dc": "x"}
    assert pipeline_stages(conv) == [{"static_labels": {"values": {"host": "web1"}}}]
    assert any(f.where == "target_config" for f in conv.report.of_kind("note"))


def test_positions_file_gets_a_name_of_its_own() -> None:
    assert nexo_positions_path("/tmp/positions.yaml") == "/tmp/positions.nexo.json"
    assert nexo_positions_path("/run/promtail/pos") == "/run/promtail/pos.nexo.json"
    conv = convert("positions: {filename: /data/positions.yml, sync_period: 10s}\n")
    assert conv.data["logs"]["positions_file"] == "/data/positions.nexo.json"
    rendered = conv.render()
    assert "Promtail kept its positions in /data/positions.yml" in rendered


@pytest.mark.parametrize(
    ("go", "nexo"),
    [
        ("5s", "5s"),
        ("500ms", "500ms"),
        ("1h30m", "5400s"),
        ("1.5s", "1.5s"),
        ("1m30s", "90s"),
        ("1s500ms", "1500ms"),
        ("2d", "2d"),
    ],
)
def test_go_durations_become_nexo_durations(go: str, nexo: str) -> None:
    assert go_duration(go) == nexo


def test_a_bare_number_is_no_duration() -> None:
    with pytest.raises(Untranslatable):
        go_duration(5)


def test_readline_rate_limit_becomes_a_limit_stage_first() -> None:
    conv = convert(
        docker_config(pipeline="      - output: {source: msg}\n")
        + "limits_config:\n  readline_rate_enabled: true\n  readline_rate: 50\n"
        "  max_line_size: 64KiB\n  max_streams: 100\n"
    )
    assert pipeline_stages(conv)[0] == {"limit": {"rate": 50, "burst": 10000, "drop": True}}
    assert conv.data["logs"]["pipeline"]["max_line_size"] == "64KiB"
    assert omitted(conv) == [(11, "limits_config.max_streams")]


# ------------------------------------------------------------------ docker discovery


@pytest.mark.parametrize(
    ("regex", "globs"),
    [
        ("/(.*)", ["*"]),
        ("/app", ["app"]),
        ("^/(api|web)-.*$", ["api-*", "web-*"]),
        (".*db.*", ["*db*"]),
        ("/?x", ["x"]),
        ("/a.b", ["a?b"]),
        ("/a\\.b(-1)?", ["a.b-1", "a.b"]),
        ("/a*b", None),
        ("/[a-z]+", None),
        ("/\\d+", None),
        ("app", []),  # Promtail sees "/app": never matches
    ],
)
def test_container_name_regexes_become_equivalent_globs(
    regex: str, globs: list[str] | None
) -> None:
    assert container_name_globs(regex) == globs


def test_docker_name_filter_is_an_unanchored_match() -> None:
    conv = convert_text((FIXTURES / "docs_docker_sd.yaml").read_text(), "x")
    assert conv.data["docker"] == {"resync_interval": "5s", "include": {"names": ["*flog*"]}}


def test_relabel_rules_translate_when_exact_and_are_reported_otherwise() -> None:
    relabel = (
        "      - {source_labels: [__meta_docker_container_label_logging], regex: promtail,"
        " action: keep}\n"
        "      - {source_labels: [__meta_docker_container_name], regex: '/(.*)',"
        " target_label: name}\n"
        "      - {source_labels: [__meta_docker_container_label_com_docker_compose_service],"
        " target_label: service}\n"
        "      - {source_labels: [__meta_docker_container_label_logging_jobname],"
        " target_label: logging_jobname}\n"
        "      - {source_labels: [__meta_docker_container_label_my_team], regex: x,"
        " action: drop}\n"
        "      - {source_labels: [__meta_docker_container_log_stream], target_label: stream}\n"
        "      - {source_labels: [__meta_docker_container_id], target_label: id}\n"
        "      - {regex: __meta_docker_container_label_(.+), action: labelmap}\n"
        "      - {source_labels: [__meta_docker_container_label_tier], regex: 'web|api',"
        " action: drop}\n"
    )
    conv = convert(docker_config(relabel=relabel))
    assert omitted(conv) == [
        (7, "scrape_configs[0].relabel_configs[1]"),  # container name renamed
        (8, "scrape_configs[0].relabel_configs[2]"),  # compose service renamed
        (10, "scrape_configs[0].relabel_configs[4]"),  # my_team: real key unknown
        (12, "scrape_configs[0].relabel_configs[6]"),  # container id
        (13, "scrape_configs[0].relabel_configs[7]"),  # labelmap
    ]
    assert conv.data["docker"] == {
        "include": {"labels": ["logging=promtail"]},
        "exclude": {"labels": ["tier=web", "tier=api"]},
    }
    assert conv.data["logs"]["pipeline"]["docker_labels"] == ["logging_jobname"]


def test_a_second_keep_on_labels_is_reported_not_ored() -> None:
    relabel = (
        "      - {source_labels: [__meta_docker_container_label_a], regex: '1', action: keep}\n"
        "      - {source_labels: [__meta_docker_container_label_b], regex: '.+', action: keep}\n"
    )
    conv = convert(docker_config(relabel=relabel))
    assert conv.data["docker"]["include"] == {"labels": ["a=1"]}
    assert omitted(conv) == [(7, "scrape_configs[0].relabel_configs[1]")]


def test_a_second_docker_scrape_config_is_reported() -> None:
    text = docker_config() + (
        "  - job_name: other\n    docker_sd_configs: [{host: 'tcp://10.0.0.1:2375'}]\n"
    )
    conv = convert(text)
    assert omitted(conv) == [(6, "scrape_configs[1].docker_sd_configs")]
    assert "docker" not in conv.data  # the first one: default host, no filters


# ----------------------------------------------------------------------------- files


def test_static_configs_become_logs_files_with_braces_expanded() -> None:
    conv = convert(
        "scrape_configs:\n"
        "  - job_name: web\n"
        "    static_configs:\n"
        "      - targets: [localhost]\n"
        "        labels:\n"
        "          job: web\n"
        "          stream: stdout\n"
        "          __path__: /var/log/{nginx,app/*}/*.log\n"
        "          __path_exclude__: /var/log/nginx/*.gz\n"
        "    relabel_configs:\n"
        "      - {target_label: team, replacement: ops}\n"
        "      - {source_labels: [__path__], target_label: path}\n"
        "    pipeline_stages:\n"
        "      - regex: {expression: '^(?P<ip>\\S+)'}\n"
    )
    (entry,) = conv.data["logs"]["files"]
    assert entry == {
        "paths": ["/var/log/nginx/*.log", "/var/log/app/*/*.log"],
        "exclude": ["/var/log/nginx/*.gz"],
        "labels": {"job": "web", "team": "ops"},
        # stream is a per-line label in nexo: its fixed value comes from a stage
        "stages": [
            {"static_labels": {"values": {"stream": "stdout"}}},
            {"regex": {"expression": "^(?P<ip>\\S+)"}},
        ],
    }
    assert omitted(conv) == [(12, "scrape_configs[0].relabel_configs[1]")]
    assert conv.data["logs"]["docker"] == {"enabled": False}


def test_brace_expansion_nests_and_refuses_unbalanced_braces() -> None:
    assert expand_braces("/a/{b,c{1,2}}/x") == ["/a/b/x", "/a/c1/x", "/a/c2/x"]
    assert expand_braces("/plain/*.log") == ["/plain/*.log"]
    with pytest.raises(ValueError):
        expand_braces("/a/{b,c/x")


def test_docker_stage_expands_for_files_and_docker_stages_are_kept_off_files() -> None:
    conv = convert_text((FIXTURES / "docs_stages.yaml").read_text(), "x")
    (entry,) = conv.data["logs"]["files"]
    assert [next(iter(s)) for s in entry["stages"]] == [
        "json",
        "labels",
        "timestamp",
        "output",
        "label_allow",
    ]
    for stage in pipeline_stages(conv):
        ((_, options),) = stage.items()
        assert options["match"].startswith('{container=~".+"')
    assert pipeline_stages(conv)[2] == {
        "json": {"match": '{container=~".+", app="loki"}', "expressions": {"msg": "message"}}
    }
    assert pipeline_stages(conv)[4] == {
        "drop": {
            "match": '{container=~".+", app="promtail"} |~ ".*noisy error.*"',
            "drop_counter_reason": "promtail_noisy_error",
        }
    }


# ---------------------------------------------------------------------------- stages


def test_nested_match_blocks_combine_their_selectors() -> None:
    pipeline = (
        "      - match:\n"
        '          selector: \'{app="a"} |= "GET"\'\n'
        "          stages:\n"
        "            - match:\n"
        '                selector: \'{env="prod"} != "health"\'\n'
        "                stages:\n"
        "                  - static_labels: {tier: web}\n"
    )
    conv = convert(docker_config(pipeline=pipeline))
    assert pipeline_stages(conv) == [
        {
            "static_labels": {
                "match": '{app="a", env="prod"} |= "GET" != "health"',
                "values": {"tier": "web"},
            }
        }
    ]
    assert combine_selectors('{a="}"}', '|= "x"') == '{a="}"} |= "x"'


def test_a_match_block_whose_stages_change_what_it_tests_is_reported_as_a_difference() -> None:
    pipeline = (
        "      - match:\n"
        "          selector: '{app=\"a\"}'\n"
        "          stages:\n"
        "            - json: {expressions: {app: service}}\n"
        "            - labels: {app:}\n"
    )
    conv = convert(docker_config(pipeline=pipeline))
    (difference,) = conv.report.of_kind("differs")
    assert difference.line == 6
    assert "tests it anew" in difference.message


def test_templates_translate_only_when_they_copy_a_field() -> None:
    pipeline = (
        "      - template: {source: app, template: '{{ .Value }}'}\n"
        "      - template: {source: svc, template: '{{ .app }}'}\n"
        "      - template: {source: line, template: '{{ .Entry }}'}\n"
        "      - template: {source: app, template: '{{ ToUpper .Value }}'}\n"
    )
    conv = convert(docker_config(pipeline=pipeline))
    assert pipeline_stages(conv) == [
        {"regex": {"expression": "^(?P<svc>(?s:.*))$", "source": "app"}},
        {"regex": {"expression": "^(?P<line>(?s:.*))$"}},
    ]
    assert omitted(conv) == [(9, "scrape_configs[0].pipeline_stages[3].template")]


def test_metrics_keep_promtail_names_and_report_their_label_difference() -> None:
    pipeline = (
        "      - labels: {level:}\n"
        "      - metrics:\n"
        "          errors:\n"
        "            type: Counter\n"
        "            source: level\n"
        "            config: {value: error, action: inc}\n"
        "          lines_total:\n"
        "            type: Counter\n"
        "            prefix: app_\n"
        "            config: {match_all: true, action: inc}\n"
        "          queue:\n"
        "            type: Gauge\n"
        "            prefix: app_\n"
        "            config: {action: set}\n"
    )
    conv = convert(docker_config(pipeline=pipeline))
    metrics = pipeline_stages(conv)[1]["metrics"]
    assert metrics["prefix"] == "app_"
    assert metrics["metrics"]["errors"] == {
        "type": "counter",
        "prefix": "promtail_custom_",
        "source": "level",
        "labels": ["container", "compose_service", "level"],
        "config": {"action": "inc", "value": "error"},
    }
    assert "source" not in metrics["metrics"]["lines_total"]  # match_all reads no field
    assert metrics["metrics"]["queue"]["source"] == "queue"  # Promtail: the metric's name
    differences = [f.message for f in conv.report.of_kind("differs")]
    assert any("promtail_custom_errors_total" in m for m in differences)
    assert any("bounded list" in m for m in differences)


def test_drop_limit_sampling_luhn_and_decolorize_translate() -> None:
    pipeline = (
        "      - drop: {source: [level], separator: '#', value: debug}\n"
        "      - drop: {older_than: 1h30m, longer_than: 8kb}\n"
        "      - limit: {rate: 10, burst: 20}\n"
        "      - sampling: {rate: 0.25}\n"
        "      - luhn: {replacement: '[card]'}\n"
        "      - decolorize:\n"
        "      - sampling: {rate: 0}\n"
        "      - cri: {}\n"
        "      - geoip: {db: /x.mmdb, source: ip}\n"
    )
    conv = convert(docker_config(pipeline=pipeline))
    stages = pipeline_stages(conv)
    assert stages[:5] == [
        {"drop": {"source": "level", "value": "debug"}},
        {"drop": {"older_than": "5400s", "longer_than": "8kb"}},
        {"limit": {"rate": 10, "burst": 20, "drop": False}},  # Promtail waits by default
        {"sample": {"rate": 0.25}},
        {"redact": {"detectors": ["card"], "replacement": "[card]"}},
    ]
    assert next(iter(stages[5])) == "replace"
    assert omitted(conv) == [
        (12, "scrape_configs[0].pipeline_stages[6].sampling"),
        (13, "scrape_configs[0].pipeline_stages[7].cri"),
        (14, "scrape_configs[0].pipeline_stages[8].geoip"),
    ]


def test_a_stage_nexo_refuses_is_reported_not_written() -> None:
    pipeline = (
        "      - regex: {expression: '(unclosed'}\n      - json: {expressions: {a: 'b[*]'}}\n"
    )
    conv = convert(docker_config(pipeline=pipeline))
    assert pipeline_stages(conv) == []
    found = conv.report.of_kind("omitted")
    assert [(f.line, f.where) for f in found] == [
        (6, "scrape_configs[0].pipeline_stages[0].regex"),
        (7, "scrape_configs[0].pipeline_stages[1].json"),
    ]
    assert all("nexo-agent refuses the translation" in f.message for f in found)


# ------------------------------------------------------------------------- positions


def _positions_setup(tmp_path: Path) -> tuple[Path, Path, str]:
    """A Promtail config reading tmp_path/logs/*.log and Docker; returns (config,
    docker root, container id)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("line1\nline2\nline3\n")
    cid = "c0ffee" * 10 + "abcd"
    docker_root = tmp_path / "docker"
    log_dir = docker_root / "containers" / cid
    log_dir.mkdir(parents=True)
    with (log_dir / f"{cid}-json.log").open("w") as f:
        for i, second in enumerate([100, 100, 101, 102, 102, 103]):
            record = {
                "log": f"line {i}\n",
                "stream": "stdout",
                "time": f"1970-01-01T00:{second // 60:02d}:{second % 60:02d}.{i:09d}Z",
            }
            f.write(json.dumps(record) + "\n")
    config = tmp_path / "promtail.yaml"
    config.write_text(
        "clients: [{url: 'http://loki:3100/loki/api/v1/push'}]\n"
        f"positions: {{filename: {tmp_path}/promtail-positions.yaml}}\n"
        "scrape_configs:\n"
        "  - job_name: files\n"
        f"    static_configs: [{{labels: {{job: app, __path__: '{logs}/*.log'}}}}]\n"
        "  - job_name: docker\n"
        "    docker_sd_configs: [{host: 'unix:///var/run/docker.sock'}]\n"
    )
    return config, docker_root, cid


def _seed(tmp_path: Path, config: Path, docker_root: Path, positions: str, *extra: str) -> Any:
    promtail_positions = tmp_path / "promtail-positions.yaml"
    promtail_positions.write_text(positions)
    return run_cli(
        "convert",
        "promtail",
        str(config),
        "-o",
        str(tmp_path / "nexo.yaml"),
        "--positions",
        str(promtail_positions),
        "--docker-data-root",
        str(docker_root),
        *extra,
    )


def test_seeded_file_position_resumes_exactly_where_promtail_stopped(tmp_path: Path) -> None:
    config, docker_root, _ = _positions_setup(tmp_path)
    app = tmp_path / "logs" / "app.log"
    result = _seed(tmp_path, config, docker_root, f'positions:\n  {app}: "6"\n')
    assert result.returncode == 0, result.stderr
    store = PositionsStore(tmp_path / "promtail-positions.nexo.json")  # the converted name
    store.load()
    record = store.get(f"file:{app}")
    assert record is not None
    st = app.stat()
    assert (record.position.dev, record.position.inode) == (st.st_dev, st.st_ino)
    assert record.position.fingerprint == Fingerprint.of(b"line1\n")
    assert record.position.offset == 6
    follower = FileFollower.open(app, record.position)
    try:
        chunk = follower.read_chunk()
    finally:
        follower.close()
    assert chunk is not None
    assert (chunk.start_offset, chunk.data) == (6, b"line2\nline3\n")


def test_docker_cursor_resumes_at_the_first_line_of_its_second(tmp_path: Path) -> None:
    config, docker_root, cid = _positions_setup(tmp_path)
    result = _seed(tmp_path, config, docker_root, f'positions:\n  cursor-{cid}: "102"\n')
    assert result.returncode == 0, result.stderr
    store = PositionsStore(tmp_path / "promtail-positions.nexo.json")
    store.load()
    record = store.get(f"docker:{cid}")
    assert record is not None
    log = docker_root / "containers" / cid / f"{cid}-json.log"
    follower = FileFollower.open(log, record.position)
    try:
        chunk = follower.read_chunk()
    finally:
        follower.close()
    assert chunk is not None
    first = json.loads(chunk.data.split(b"\n", 1)[0])
    assert first["log"] == "line 3\n"  # Docker's since is inclusive: all of second 102


def test_positions_that_cannot_carry_over_are_reported(tmp_path: Path) -> None:
    config, docker_root, _ = _positions_setup(tmp_path)
    logs = tmp_path / "logs"
    (logs / "short.log").write_text("a\n")
    (logs / "mid.log").write_text("abc\ndef\n")
    elsewhere = tmp_path / "elsewhere.log"
    elsewhere.write_text("x\n")
    positions = (
        "positions:\n"
        f'  {logs}/app.log: "12"\n'
        f'  {logs}/gone.log: "5"\n'
        f'  {logs}/short.log: "99"\n'
        f'  {logs}/mid.log: "2"\n'
        f'  {elsewhere}: "2"\n'
        '  cursor-journal: "s=abc"\n'
    )
    result = _seed(tmp_path, config, docker_root, positions)
    assert result.returncode == 1
    pos = tmp_path / "promtail-positions.yaml"
    for line, why in [
        (3, "no longer exists"),
        (4, "beyond the file's 2 bytes"),
        (5, "not at a line end"),
        (6, "no target of the converted config reads this file"),
        (7, "not a Docker container cursor"),
    ]:
        assert f"{pos}:{line}:" in result.stderr and why in result.stderr, (line, why)
    store = PositionsStore(tmp_path / "promtail-positions.nexo.json")
    store.load()
    assert list(store) == [f"file:{logs}/app.log"]  # the one that could be carried over
    allowed = _seed(
        tmp_path,
        config,
        docker_root,
        positions,
        "--allow-partial",
        "--positions-out",
        str(tmp_path / "other.json"),
    )
    assert allowed.returncode == 0, allowed.stderr


def test_an_existing_positions_file_is_never_overwritten(tmp_path: Path) -> None:
    config, docker_root, _ = _positions_setup(tmp_path)
    out = tmp_path / "nexo-positions.json"
    out.write_text('{"version": 1, "positions": {}}')
    app = tmp_path / "logs" / "app.log"
    result = _seed(
        tmp_path,
        config,
        docker_root,
        f'positions:\n  {app}: "6"\n',
        "--positions-out",
        str(out),
        "--allow-partial",
    )
    assert result.returncode == 1
    assert "already exists and is not empty" in result.stderr
    assert out.read_text() == '{"version": 1, "positions": {}}'


def test_unreadable_promtail_positions_exit_2(tmp_path: Path) -> None:
    config, docker_root, _ = _positions_setup(tmp_path)
    result = _seed(tmp_path, config, docker_root, "positions: [1, 2\n")
    assert result.returncode == 2
    assert "invalid YAML" in result.stderr
    assert not os.path.exists(tmp_path / "promtail-positions.nexo.json")


# ---------------------------------------------------------------------- odd inputs


@pytest.mark.parametrize(
    "text",
    [
        "",
        "clients: 5\n",
        "clients: [5]\n",
        "positions: 3\n",
        "server: 5\nlimits_config: 5\n",
        "scrape_configs: [5, null]\n",
        "scrape_configs:\n - static_configs: [5, {labels: 3}, {labels: {__path__: 5}}]\n",
        "scrape_configs:\n - docker_sd_configs: [{host: 5, filters: 3}]\n"
        "   relabel_configs: [5, {action: 3}, {source_labels: 5, action: keep}]\n",
        "scrape_configs:\n - docker_sd_configs: [{}]\n"
        "   pipeline_stages: [5, {a: 1, b: 2}, {json: 5}, {json: {expressions: 5}},"
        " {labels: [1]}, {match: 5}, {match: {selector: 5}}, {metrics: {a: 5}},"
        " {drop: {source: 5, older_than: 5}}, {multiline: {}}, {static_labels: {a: null}},"
        " {labeldrop: 5}, {template: 5}, {luhn: 5}, {limit: {}}, {docker: null}]\n",
        "clients: [{url: u, backoff_config: {max_retries: x}, batchsize: big}]\n",
        "clients: [{url: u, basic_auth: {username: a}, bearer_token: b}]\n",
    ],
)
def test_odd_input_is_reported_never_crashes_and_still_loads(text: str) -> None:
    from agent.convert import load_problem

    conv = convert(text)
    assert load_problem(conv.render()) is None
    assert yaml.safe_load(conv.render()) == conv.data


def test_env_references_are_kept_and_noted() -> None:
    conv = convert("clients:\n  - url: ${LOKI_URL:-http://loki:3100/loki/api/v1/push}\n")
    assert conv.data["logs"]["loki"]["url"] == "${LOKI_URL:-http://loki:3100/loki/api/v1/push}"
    assert any(f.line == 2 and "expand-env" in f.message for f in conv.report.of_kind("note"))
    assert "positions_file" not in conv.data["logs"]  # none given: nexo's own default
