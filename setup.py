"""Only the optional C speedups live here; everything else is in pyproject.toml.

``optional=True``: on a host without a C compiler or Python headers the build warns and
the agent runs its pure-Python code instead (agent/logs/speedups.py), at a lower rate.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "agent.logs._speedups",
            ["agent/logs/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
