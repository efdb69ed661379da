"""YAML with positions: plain Python values plus the line of every key and value.

PyYAML's ``compose`` gives nodes with ``start_mark``; we convert them to plain values
(safe: only maps, lists, strings, numbers, booleans and null, as ``yaml.safe_load`` would)
and keep ``lines[path] = 1-based line`` for every path (a tuple of keys and list indexes),
so validation errors can name the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(slots=True)
class Located:
    value: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """The line of ``path``, or of its closest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


_construct = yaml.SafeLoader(stream="")  # only for construct_scalar's implicit types


def _scalar(node: yaml.ScalarNode) -> Any:
    return _construct.construct_object(node, deep=True)


def load(text: str) -> Located:
    """Parse one YAML document; raises :class:`YamlError` with the line of a syntax error."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlError(line, f"not valid YAML: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise YamlError(1, f"not valid YAML: {e}") from None
    out = Located(None)
    if root is None:
        return out
    out.value = _convert(root, (), out.lines, [0])
    return out


#: A cap on converted nodes: aliases can make a small file expand enormously.
MAX_NODES = 200_000


def _convert(node: yaml.Node, path: Path, lines: dict[Path, int], count: list[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise YamlError(node.start_mark.line + 1, f"document too large (more than {MAX_NODES} values, aliases?)")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        try:
            return _scalar(node)
        except yaml.YAMLError as e:
            raise YamlError(node.start_mark.line + 1, f"bad value: {e}") from None
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, count) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise YamlError(knode.start_mark.line + 1, "a key must be plain text")
            key = _scalar(knode)
            if knode.tag == "tag:yaml.org,2002:merge":
                raise YamlError(knode.start_mark.line + 1, "merge keys (<<) are not supported")
            key = str(key)
            if key in out:
                raise YamlError(knode.start_mark.line + 1, f"duplicate key {key!r}")
            lines[(*path, key)] = knode.start_mark.line + 1
            out[key] = _convert(vnode, (*path, key), lines, count)
        return out
    raise YamlError(node.start_mark.line + 1, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover
