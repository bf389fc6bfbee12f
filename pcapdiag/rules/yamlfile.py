"""A rule file's YAML, read safely: a SafeLoader subclass only (no Python object tags), with
aliases refused outright (which also rules out "billion laughs" alias bombs), and the line of
every mapping and key kept for the messages that point into the file."""

from __future__ import annotations

from typing import Any

import yaml


class LineDict(dict[str, Any]):
    """A mapping that remembers the line (1-based) each key was written on."""

    lines: dict[str, int]
    line: int


class LineLoader(yaml.SafeLoader):
    """SafeLoader that records line numbers and refuses aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed in rule files", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = {
            str(k.value): k.start_mark.line + 1
            for k, _ in node.value
            if isinstance(k, yaml.ScalarNode)
        }
        return mapping


LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    LineLoader.construct_mapping,  # type: ignore[arg-type]
)

_CSafeLoader = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml


def parse(text: str) -> Any:
    """The rule file's data (LineDicts). libyaml parses a valid file several times faster
    than the pure-Python parser; anything it finds wrong, and any alias, is parsed again by
    LineLoader, whose errors (and alias refusal) are the ones reported."""
    if _CSafeLoader is not None:
        loader = _CSafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and not _has_alias(node):
                return _construct(loader, node)
        except yaml.YAMLError:
            pass
        finally:
            loader.dispose()
    return yaml.load(text, Loader=LineLoader)


def _construct(loader: Any, node: Any) -> Any:
    # LineLoader's constructors (line numbers) on a node tree composed by libyaml.
    constructor = LineLoader.__new__(LineLoader)
    yaml.constructor.SafeConstructor.__init__(constructor)
    return constructor.construct_document(node)


def _has_alias(node: Any) -> bool:
    """An alias composes to the very node its anchor names: a node met twice."""
    seen: set[int] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if id(n) in seen:
            return True
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                todo += (k, v)
        elif isinstance(n, yaml.SequenceNode):
            todo += n.value
    return False
