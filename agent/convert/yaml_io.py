"""YAML in with line numbers, YAML out with comments, both on PyYAML alone.

Reading: every mapping and sequence of the input becomes a :class:`LineMap` /
:class:`LineList`, plain ``dict``/``list`` subclasses that also remember on which line each
key and item starts, so a report can point at ``promtail.yaml:42`` for any value.

Writing: :func:`dump_commented` writes plain data in block style with ``# ...`` lines
placed before chosen keys or list items (PyYAML keeps no comments, and the converted
config should say where each part came from). The result loads back to the same data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class LineMap(dict[Any, Any]):
    """A mapping from the input: ``line`` is where it starts, ``key_lines`` where each key
    is (1-based)."""

    line: int
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from the input: ``line`` is where it starts, ``item_lines`` where each
    item is (1-based)."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry their line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineMap]:
    mapping = LineMap()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    yield mapping
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            ) from None
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1


def _construct_list(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    items = LineList()
    items.line = node.start_mark.line + 1
    items.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield items
    items.extend(loader.construct_object(child, deep=True) for child in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def load_with_lines(text: str) -> Any:
    """Parse one YAML document; raises ``yaml.YAMLError`` on invalid input."""
    return yaml.load(text, Loader=_LineLoader)


def line_of(container: Any, key: Any, default: int = 0) -> int:
    """Where ``container[key]`` starts in the input (``default`` when unknown)."""
    if isinstance(container, LineMap | LineList):
        return container.line_of(key)
    return default


def start_line(value: Any, default: int = 0) -> int:
    """Where a mapping or sequence from the input starts (``default`` for scalars)."""
    return getattr(value, "line", default)


# ------------------------------------------------------------------------------ output


def scalar(value: Any) -> str:
    """One scalar as YAML text on one line (quoted when YAML would read it otherwise)."""
    if isinstance(value, str) and any(ch == "\n" or not ch.isprintable() for ch in value):
        text: str = yaml.safe_dump(value, default_style='"', width=float("inf"))
    else:
        text = yaml.safe_dump(
            value, default_flow_style=True, width=float("inf"), allow_unicode=True
        )
    text = text.removesuffix("\n...\n").removesuffix("\n")
    if "\n" in text:  # PyYAML folded it anyway: the escaped form is always one line
        text = yaml.safe_dump(value, default_style='"', width=float("inf"))
        text = text.removesuffix("\n")
    return text


def _is_flat_list(value: list[Any]) -> bool:
    return all(not isinstance(v, dict | list) for v in value)


def _flow(value: Any) -> str | None:
    """Inline text for empty containers, scalars and lists of scalars; ``None`` for blocks."""
    if isinstance(value, dict):
        return "{}" if not value else None
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[" + ", ".join(scalar(v) for v in value) + "]" if _is_flat_list(value) else None
    return scalar(value)


def dump_commented(
    data: dict[str, Any], comments: dict[Path_, list[str]], header: Sequence[str] = ()
) -> str:
    """Block-style YAML of ``data`` with ``comments[path]`` written above each path's key
    (or list item). Comment texts are single lines without the leading ``#``."""
    out: list[str] = [_comment_line("", text) for text in header]
    if header:
        out.append("")
    _write_map(data, (), 0, comments, out, top=True)
    return "\n".join(out) + "\n"


def _comment_line(indent: str, text: str) -> str:
    text = " ".join(text.split("\n"))
    return f"{indent}# {text}".rstrip() if text else f"{indent}#"


def _write_comments(
    path: Path_, indent: int, comments: dict[Path_, list[str]], out: list[str]
) -> None:
    for text in comments.get(path, ()):
        out.append(_comment_line(" " * indent, text))


def _write_map(
    data: dict[str, Any],
    path: Path_,
    indent: int,
    comments: dict[Path_, list[str]],
    out: list[str],
    top: bool = False,
    first_prefix: str | None = None,
) -> None:
    pad = " " * indent
    for n, (key, value) in enumerate(data.items()):
        sub = (*path, key)
        if top and n:
            out.append("")
        if first_prefix is None or n:
            _write_comments(sub, indent, comments, out)
        lead = first_prefix if first_prefix is not None and n == 0 else pad
        inline = _flow(value)
        if inline is not None:
            out.append(f"{lead}{scalar(key)}: {inline}")
        elif isinstance(value, dict):
            out.append(f"{lead}{scalar(key)}:")
            _write_map(value, sub, indent + 2, comments, out)
        else:
            out.append(f"{lead}{scalar(key)}:")
            _write_list(value, sub, indent + 2, comments, out)


def _write_list(
    data: list[Any], path: Path_, indent: int, comments: dict[Path_, list[str]], out: list[str]
) -> None:
    pad = " " * indent
    for i, item in enumerate(data):
        sub = (*path, i)
        _write_comments(sub, indent, comments, out)
        if isinstance(item, dict) and item:
            first_key = next(iter(item))
            _write_comments((*sub, first_key), indent, comments, out)
            _write_map(item, sub, indent + 2, comments, out, first_prefix=f"{pad}- ")
        elif isinstance(item, list) and item and not _is_flat_list(item):
            out.append(f"{pad}-")
            _write_list(item, sub, indent + 2, comments, out)
        else:
            out.append(f"{pad}- {_flow(item)}")
