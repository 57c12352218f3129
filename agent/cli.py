"""Command line: argument parsing only; everything else lives in :mod:`agent.app`."""

from __future__ import annotations

import argparse
import sys

import yaml

from agent import __version__
from agent.config import ConfigError, effective_config, load_config


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"nexo-agent: config error: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        sys.stdout.write(yaml.safe_dump(effective_config(config), sort_keys=False))
        return 0
    from agent.app import run

    return run(config, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
