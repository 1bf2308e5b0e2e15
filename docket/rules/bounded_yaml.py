"""YAML from a tenant, read within bounds.

A policy source is untrusted input: PyYAML itself reads an alias bomb (anchors whose aliases
refer to earlier anchors, 4.6 KB) in milliseconds, because the aliases share one object, but
everything after it (schema validation, copying, CEL values) walks the expanded tree, which grows
as 9^9. Deep nesting makes PyYAML's recursive composer (and later code) raise RecursionError.

So a source is checked in three steps before anything is built from it: its size; its nesting
depth and event count from the parser's event stream (the parser is a state machine, it does not
recurse); then the composed node graph's size with every alias and merge key counted as the
copy it becomes. Only then are Python objects constructed.
"""
from __future__ import annotations

from typing import Any

import yaml

#: Largest policy source, in UTF-8 bytes (the built-in policies are 5-14 KB).
MAX_SOURCE_BYTES = 256 * 1024
#: Deepest nesting of mappings and sequences (the built-in policies reach 9).
MAX_DEPTH = 32
#: Most nodes once every alias is expanded (the built-in policies have under 400).
MAX_NODES = 20_000


class YAMLBoundsError(ValueError):
    """The source is larger, deeper or expands to more nodes than a policy may; ``line`` when
    known (1-based)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def load_bounded(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The single YAML document in ``text``, constructed with ``loader`` (a SafeLoader subclass)
    once the source is known to be within the bounds above; raises :class:`YAMLBoundsError`
    when it is not, and ``yaml.YAMLError`` for invalid YAML."""
    size = len(text.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        raise YAMLBoundsError(f"the source is {size} bytes, more than the {MAX_SOURCE_BYTES // 1024} KiB a policy "
                              "may have")
    _check_events(text)
    instance = loader(text)
    try:
        node = instance.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return instance.construct_document(node)
    finally:
        instance.dispose()


def _check_events(text: str) -> None:
    depth = events = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        events += 1
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YAMLBoundsError(f"nested more than {MAX_DEPTH} levels deep", line=event.start_mark.line + 1)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if events > MAX_NODES * 2:  # a node is at most two events (start and end)
            raise YAMLBoundsError(f"more than {MAX_NODES} nodes", line=event.start_mark.line + 1)


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes of the tree that aliases (and ``<<`` merge keys, which copy a mapping's
    entries) stand for, without building it: each distinct node's expanded size is computed once,
    so a bomb is measured in time linear in its source. Iterative, so depth costs no stack."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_NODES:
                raise YAMLBoundsError(f"expands to more than {MAX_NODES} nodes (aliases counted as copies)",
                                      line=node.start_mark.line + 1)
            sizes[key] = total
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in sizes:
                continue
            if id(child) in on_path:  # an ancestor: the alias makes a cycle
                raise YAMLBoundsError("an alias refers to a node that contains it", line=child.start_mark.line + 1)
            stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
