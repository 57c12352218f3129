"""Which stages one target gets: its container's own rules, then the configured ones.

Order for a container: the stages its Docker labels ask for that shrink or join the
stream (``nexo.logs.multiline``, ``nexo.logs.drop``, ``nexo.logs.sample``), then
``logs.pipeline.stages``, then ``nexo.logs.redact`` last, so that what any stage extracted
is masked too. A static file gets ``logs.pipeline.stages`` then its ``logs.files`` entry's
own ``stages``.
"""

from __future__ import annotations

import logging

from agent.config import LogsConfig
from agent.logs.model import LogTarget
from agent.logs.stages import StageSpec, build_pipeline, parse_stages
from agent.logs.stages.base import StageContext, StagePipeline
from agent.logs.stages.docker_labels import LabelRules, rules_from_labels

log = logging.getLogger("agent.logs.stages")


class TargetStages:
    """Builds each reader's :class:`StagePipeline`; validates the shared specs once."""

    def __init__(self, logs: LogsConfig, context: StageContext) -> None:
        self.context = context
        self.global_specs = parse_stages(logs.pipeline.stages)
        self.file_specs = [parse_stages(f.stages) for f in logs.files]
        self.journal_specs = parse_stages(logs.journal.stages)
        self._warned: set[tuple[str, str]] = set()

    def rules_for(self, target: LogTarget) -> LabelRules:
        """The container's ``nexo.logs.*`` rules; invalid ones warned about once each."""
        if target.kind != "docker":
            return LabelRules()
        rules = rules_from_labels(dict(target.docker_labels))
        for label, why in rules.problems:
            key = (target.container_id, label)
            if key not in self._warned:
                self._warned.add(key)
                log.warning(
                    f"container {target.name}: ignoring its label {label}: {why}; "
                    "its logs are shipped without its own label rules",
                    extra={"container": target.name, "label": label, "reason": why},
                )
        return rules

    def specs_for(self, target: LogTarget, rules: LabelRules) -> list[StageSpec]:
        specs: list[StageSpec] = list(rules.before)
        specs.extend(self.global_specs)
        if target.kind == "file" and 0 <= target.file_group < len(self.file_specs):
            specs.extend(self.file_specs[target.file_group])
        elif target.kind == "journal":
            specs.extend(self.journal_specs)
        specs.extend(rules.after)
        return specs

    def pipeline_for(self, target: LogTarget, rules: LabelRules | None = None) -> StagePipeline:
        rules = rules if rules is not None else self.rules_for(target)
        context = StageContext(
            metrics=self.context.metrics,
            clock=self.context.clock,
            shared=self.context.shared,
        )
        return build_pipeline(self.specs_for(target, rules), context)
