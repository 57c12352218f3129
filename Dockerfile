# nexo-agent: Docker logs to Loki, node_exporter host metrics and cAdvisor container
# metrics from one process. Build with deploy/scripts/build-image.sh, which makes the base
# image locally (Debian bookworm's python3, no registry pull) and the wheels on the host;
# any Debian bookworm Python 3.11 image works as BASE too.
#
# Run (see deploy/README.md; every host mount is read-only except the positions volume):
#   docker run -d --name nexo-agent --network host --pid host --read-only \
#     -v /var/lib/docker/containers:/var/lib/docker/containers:ro \
#     -v /var/run/docker.sock:/var/run/docker.sock:ro \
#     -v /proc:/host/proc:ro -v /sys:/host/sys:ro -v /:/host/root:ro,rslave \
#     -v nexo-agent-positions:/var/lib/nexo-agent \
#     -e LOKI_URL=http://loki.example:3100/loki/api/v1/push nexo-agent:local
ARG BASE=nexo-agent-base:local

FROM ${BASE} AS install
# Lets build-image.sh prune this project's superseded images, and only those.
LABEL org.opencontainers.image.title="nexo-agent"
# Wheels of the agent and every dependency, built on the host from PyPI
# (pip wheel . -w dist/wheels): the build itself needs no network.
COPY dist/wheels/ /tmp/wheels/
RUN python3 -m venv /opt/nexo-agent \
 && /opt/nexo-agent/bin/pip install --quiet --no-index --no-cache-dir \
      --find-links /tmp/wheels nexo-agent \
 && /opt/nexo-agent/bin/pip uninstall --quiet --yes pip setuptools

FROM ${BASE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="nexo-agent" \
      org.opencontainers.image.description="Docker logs to Loki, host and container metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=install /opt/nexo-agent /opt/nexo-agent
COPY deploy/docker/agent.yaml /etc/nexo-agent/agent.yaml
COPY deploy/docker/healthcheck.py /opt/nexo-agent/healthcheck.py
# Bytecode is compiled at install time: nothing is written outside the positions volume,
# so the container runs with a read-only root filesystem.
ENV PATH=/opt/nexo-agent/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Acknowledged offsets; owned by uid 10001 so `--user 10001` works where the logs and the
# socket are readable to it (root is the default: Docker's log files are root-only).
VOLUME ["/var/lib/nexo-agent"]
EXPOSE 9101
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/opt/nexo-agent/bin/python", "/opt/nexo-agent/healthcheck.py"]
ENTRYPOINT ["/opt/nexo-agent/bin/nexo-agent"]
CMD ["--config", "/etc/nexo-agent/agent.yaml"]
