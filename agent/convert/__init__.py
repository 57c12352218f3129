"""``nexo-agent convert promtail``: a Promtail config (and positions) as nexo-agent's.

The converted config is written commented (where each part came from) and is loaded with
nexo-agent's own config loader before the command returns, so what it writes is what the
agent accepts. Everything that did not carry over exactly is reported on stderr with its
input line (:mod:`agent.convert.report`). Exit status: 0 when everything was translated
(or ``--allow-partial``), 1 when something was left out or the positions could not be
written, 2 when the input cannot be read.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import yaml

if TYPE_CHECKING:
    from agent.convert.promtail import Conversion

EXIT_OK, EXIT_PARTIAL, EXIT_UNREADABLE = 0, 1, 2


def run_convert(
    config: str,
    *,
    output: str | None = None,
    allow_partial: bool = False,
    positions: str | None = None,
    positions_out: str | None = None,
    docker_data_root: str = "/var/lib/docker",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Convert the Promtail config ``config``; see the module docstring for the outcome."""
    from agent.convert.promtail import convert_text
    from agent.convert.promtail_stages import Untranslatable

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        text = Path(config).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"nexo-agent convert: cannot read {config}: {exc}", file=err)
        return EXIT_UNREADABLE
    try:
        conversion = convert_text(text, config)
    except yaml.YAMLError as exc:
        print(f"nexo-agent convert: {config}: invalid YAML: {exc}", file=err)
        return EXIT_UNREADABLE
    except Untranslatable as exc:
        print(f"nexo-agent convert: {config}: {exc}", file=err)
        return EXIT_UNREADABLE
    report = conversion.report
    rendered = conversion.render()
    for type_name in sorted(conversion.unavailable_stages):
        report.note(
            config,
            0,
            "",
            f"stage {type_name!r} could not be checked: this nexo-agent build lacks it",
        )
    problem = load_problem(rendered)
    if problem is not None:
        report.omitted(
            config, 0, "", f"the converted config does not load in nexo-agent: {problem}"
        )
    if output:
        try:
            Path(output).write_text(rendered, encoding="utf-8")
        except OSError as exc:
            print(f"nexo-agent convert: cannot write {output}: {exc}", file=err)
            return EXIT_PARTIAL
    else:
        out.write(rendered)
    status = EXIT_PARTIAL if problem is not None else EXIT_OK
    if positions:
        status = max(status, _seed(positions, positions_out, conversion, docker_data_root))
    print(f"nexo-agent convert: {config} -> {output or 'stdout'}", file=err)
    err.write(report.render() or "everything was translated\n")
    if status == EXIT_OK and not report.complete and not allow_partial:
        return EXIT_PARTIAL
    return status


def load_problem(rendered: str) -> str | None:
    """Why nexo-agent would refuse this config text, or ``None`` when it loads."""
    from agent.config import ConfigError, load_config

    with tempfile.TemporaryDirectory(prefix="nexo-convert-") as tmp:
        path = Path(tmp) / "converted.yaml"
        path.write_text(rendered, encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as exc:
            return f"{exc.key}: {exc.reason}" if exc.key else exc.reason
        except Exception as exc:  # a stage module missing or broken: still say what
            return f"{type(exc).__name__}: {exc}"
    return None


def _seed(
    positions: str, positions_out: str | None, conversion: Conversion, docker_data_root: str
) -> int:
    """Seed nexo positions from Promtail's: an exit status (1: nothing written, 2: the
    Promtail positions file is unreadable)."""
    from agent.config import expand_env
    from agent.convert.promtail_positions import (
        PositionsError,
        SeedTargets,
        load_promtail_positions,
        plan_seeds,
        write_seeds,
    )

    report = conversion.report
    out = Path(positions_out or expand_env(conversion.positions_file))
    try:
        promtail_positions = load_promtail_positions(Path(positions))
    except PositionsError as exc:
        report.omitted(positions, 0, "", str(exc))
        return EXIT_UNREADABLE
    targets = SeedTargets(conversion.files, conversion.docker_enabled, Path(docker_data_root))
    seeds = plan_seeds(promtail_positions, targets, report, positions)
    problem = write_seeds(seeds, out)
    if problem is not None:
        report.omitted(positions, 0, "", problem)
        return EXIT_PARTIAL
    report.note(positions, 0, "", f"seeded {len(seeds)} position(s) into {out}")
    return EXIT_OK
