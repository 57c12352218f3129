"""nexo-agent: Docker logs to Loki, node_exporter host metrics and cAdvisor container metrics."""

__version__ = "0.1.0"
