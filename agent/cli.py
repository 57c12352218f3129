"""Command line: argument parsing only; everything else lives in :mod:`agent.app`."""

from __future__ import annotations

import argparse
import sys

from agent import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexo-agent",
        description="Ship Docker logs to Loki; serve node_exporter and cAdvisor metrics.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML config file (default: built-in)")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config, print the effective config and exit (2 on error)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="do not push: print one JSON object per entry on stdout",
    )
    parser.add_argument("--version", action="version", version=f"nexo-agent {__version__}")
    parser.epilog = (
        "nexo-agent doctor --config FILE [--push-test]: check the environment; "
        "nexo-agent convert promtail PROMTAIL.yaml [-o OUT.yaml]: translate a Promtail config"
    )
    return parser


def build_doctor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexo-agent doctor",
        description="Check Docker, its data root, Loki, the positions file and the host "
        "mounts, one line each with the fix; exit 1 on any FAIL.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML config file (default: built-in)")
    parser.add_argument(
        "--push-test",
        action="store_true",
        help="also push one test line to Loki (label job=nexo-agent-doctor)",
    )
    return parser


def build_convert_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexo-agent convert",
        description="Translate a Promtail config into a nexo-agent config (commented, "
        "checked with nexo-agent's own loader). What does not carry over is reported on "
        "stderr with its input line; exit 1 when anything was left out (0 with "
        "--allow-partial), 2 when the input cannot be read.",
    )
    parser.add_argument("kind", choices=["promtail"], help="the agent the config is for")
    parser.add_argument("config", metavar="PROMTAIL.yaml", help="the config to translate")
    parser.add_argument(
        "-o", "--output", metavar="OUT.yaml", help="write the result here (default: stdout)"
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="exit 0 even when some items could not be translated (they are still reported)",
    )
    parser.add_argument(
        "--positions",
        metavar="PROMTAIL_POSITIONS.yaml",
        help="also seed nexo-agent's positions from Promtail's, for the files both know "
        "(run it with Promtail stopped); refuses to overwrite a non-empty positions file",
    )
    parser.add_argument(
        "--positions-out",
        metavar="FILE",
        help="where to write the seeded positions (default: the converted logs.positions_file)",
    )
    parser.add_argument(
        "--docker-data-root",
        metavar="DIR",
        default="/var/lib/docker",
        help="Docker's data root, to find container logs for Promtail's docker_sd cursors "
        "(default: /var/lib/docker)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:
        from agent.doctor import run_doctor

        doctor_args = build_doctor_parser().parse_args(argv[1:])
        return run_doctor(doctor_args.config, doctor_args.push_test)
    if argv[:1] == ["convert"]:
        from agent.convert import run_convert

        parser = build_convert_parser()
        convert_args = parser.parse_args(argv[1:])
        if convert_args.positions_out and not convert_args.positions:
            parser.error("--positions-out needs --positions")
        return run_convert(
            convert_args.config,
            output=convert_args.output,
            allow_partial=convert_args.allow_partial,
            positions=convert_args.positions,
            positions_out=convert_args.positions_out,
            docker_data_root=convert_args.docker_data_root,
        )
    # Heavy imports (the config schema, the pipeline) only once they are needed: --version and
    # --help answer without them.
    args = build_parser().parse_args(argv)
    from agent.config import ConfigError, effective_config, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"nexo-agent: config error: {exc}", file=sys.stderr)
        return 2
    for note in config.deprecations:
        print(f"nexo-agent: warning: {args.config}: {note}", file=sys.stderr)
    if args.check_config:
        import yaml

        sys.stdout.write(yaml.safe_dump(effective_config(config), sort_keys=False))
        return 0
    from agent.app import run

    return run(config, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
