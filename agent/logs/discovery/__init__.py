"""Which containers and files exist: the one source of truth for logs and container metrics.

Flow: a Docker source (:class:`DockerApiDiscovery` or, without the socket,
:class:`DockerFilesDiscovery`) keeps a :class:`ContainerInventory` current; container
metrics read the inventory directly. For logs, :class:`ContainerTargetFeed` applies the
filters and label rules to inventory events, and together with :class:`StaticFileDiscovery`
feeds one stream of :class:`TargetEvent` values (target added / updated / removed).
"""

from agent.logs.discovery.docker_api import (
    DockerApiDiscovery,
    container_event_action,
    event_time_ns,
)
from agent.logs.discovery.docker_files import DockerFilesDiscovery
from agent.logs.discovery.inventory import (
    ContainerInfo,
    ContainerInventory,
    InventoryEvent,
    InventoryEventKind,
    agent_log_path,
    container_from_inspect,
    docker_state_time,
    json_log_path,
)
from agent.logs.discovery.selection import (
    OWN_CONTAINER_ENV,
    SelectedContainers,
    detect_own_container_id,
    filter_reason,
    skip_reason,
)
from agent.logs.discovery.static_files import StaticFileDiscovery
from agent.logs.discovery.targets import (
    ContainerTargetFeed,
    TargetEvent,
    TargetEventKind,
    TargetSink,
    bounded_labels,
    log_target_for,
    sanitize_label_name,
)

__all__ = [
    "OWN_CONTAINER_ENV",
    "ContainerInfo",
    "ContainerInventory",
    "ContainerTargetFeed",
    "DockerApiDiscovery",
    "DockerFilesDiscovery",
    "InventoryEvent",
    "InventoryEventKind",
    "SelectedContainers",
    "StaticFileDiscovery",
    "TargetEvent",
    "TargetEventKind",
    "TargetSink",
    "agent_log_path",
    "bounded_labels",
    "container_event_action",
    "container_from_inspect",
    "detect_own_container_id",
    "docker_state_time",
    "event_time_ns",
    "filter_reason",
    "json_log_path",
    "log_target_for",
    "sanitize_label_name",
    "skip_reason",
]
