"""Only the optional C speedups live here; everything else is in pyproject.toml.

``optional=True``: on a host without a C compiler or Python headers the build warns and
the agent runs its pure-Python code instead (agent/native.py), at a lower rate.
"""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension(name, [source], optional=True, extra_compile_args=_FLAGS)
        for name, source in (
            ("agent.logs._speedups", "agent/logs/_speedups.c"),
            ("agent.metrics._exposition", "agent/metrics/_exposition.c"),
        )
    ]
)
