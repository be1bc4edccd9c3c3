"""Safe YAML for the sites file: duplicate keys refused (key and line named), fast and lean on fleet files.

``yaml.safe_load`` keeps the *last* of two equal keys, so ``capacity_kwh`` written twice silently wins once;
and it composes a node graph with marks for every scalar before building any value (a 10,000-site file took
tens of seconds and hundreds of MB). Here values are built straight from libyaml's event stream (the C parser
when PyYAML has it), with YAML 1.1 safe-loader typing: plain scalars resolved as ``safe_load`` resolves them
(memoised: a fleet file repeats the same few thousand scalars), quoted scalars are strings, anchors, aliases
and ``<<`` merge keys supported, explicit standard tags honoured, anything else refused.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")


class YamlError(ValueError):
    """A YAML document the sites loader refuses (duplicate key, bad alias, unknown tag, several documents)."""


class _Mapping:
    __slots__ = ("anchor", "key", "key_line", "lines", "merges", "value", "waiting_key")

    def __init__(self, value: dict[Any, Any], anchor: str | None) -> None:
        self.value = value
        self.anchor = anchor
        self.lines: dict[Any, int] = {}
        self.merges: list[dict[Any, Any]] = []
        self.waiting_key = True
        self.key: Any = None
        self.key_line = 0


class _Builder:
    def __init__(self) -> None:
        self.resolver = Resolver()
        self.constructor = SafeConstructor()
        self.plain: dict[str, Any] = {}
        self.anchors: dict[str, Any] = {}
        self.stack: list[_Mapping | list[Any]] = []
        self.documents: list[Any] = []

    # -- scalars -------------------------------------------------------------------------------------
    def scalar(self, event: yaml.ScalarEvent) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            if not event.implicit[0] or tag == "!":
                return event.value  # quoted (or non-specific '!'): a string, as safe_load reads it
            try:
                return self.plain[event.value]
            except KeyError:
                tag = self.resolver.resolve(ScalarNode, event.value, (True, False))
                value = self._construct(tag, event)
                self.plain[event.value] = value
                return value
        return self._construct(tag, event)

    def _construct(self, tag: str, event: yaml.ScalarEvent) -> Any:
        if tag == _MERGE:
            return _MergeKey
        ctor = SafeConstructor.yaml_constructors.get(tag)
        if ctor is None:
            raise YamlError(f"line {event.start_mark.line + 1}: tag {tag!r} is not allowed in a sites file")
        try:
            return ctor(self.constructor, ScalarNode(tag, event.value, event.start_mark, event.end_mark))
        except (ConstructorError, ValueError) as exc:
            raise YamlError(f"line {event.start_mark.line + 1}: {tag.rsplit(':', 1)[-1]} "
                            f"{event.value!r} is invalid ({exc})") from None

    # -- structure -----------------------------------------------------------------------------------
    def add(self, value: Any, line: int) -> None:
        if not self.stack:
            self.documents.append(value)
            return
        top = self.stack[-1]
        if isinstance(top, list):
            top.append(value)
            return
        if top.waiting_key:
            if isinstance(value, dict | list):
                raise YamlError(f"line {line + 1}: a mapping key must be a plain value, not a "
                                f"{'mapping' if isinstance(value, dict) else 'list'}")
            top.key, top.key_line, top.waiting_key = value, line, False
            return
        key, top.waiting_key = top.key, True
        if key is _MergeKey:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise YamlError(f"line {top.key_line + 1}: '<<' must merge a mapping or a list of mappings")
            top.merges.extend(sources)
            return
        if key in top.lines:
            raise YamlError(f"line {top.key_line + 1}: duplicate key {key!r} (first at line {top.lines[key] + 1}); "
                            "YAML would silently keep only the last one")
        top.lines[key] = top.key_line
        top.value[key] = value

    def end_mapping(self) -> dict[Any, Any]:
        frame = self.stack.pop()
        assert isinstance(frame, _Mapping)
        if frame.merges:
            explicit = dict(frame.value)
            frame.value.clear()
            for source in frame.merges:  # earlier sources win over later ones; explicit keys over all
                for k, v in source.items():
                    frame.value.setdefault(k, v)
            frame.value.update(explicit)
        return frame.value

    def anchor(self, name: str | None, value: Any) -> None:
        if name is not None:
            self.anchors[name] = value


class _MergeKeyType:
    def __repr__(self) -> str:
        return "'<<'"


_MergeKey = _MergeKeyType()


def load_yaml(text: str) -> Any:
    """The single document in ``text`` as plain Python values; ``YamlError`` / ``yaml.YAMLError`` otherwise."""
    b = _Builder()
    for event in yaml.parse(text, Loader=_Parser):
        kind = type(event)
        if kind is yaml.ScalarEvent:
            value = b.scalar(event)
            b.anchor(event.anchor, value)
            b.add(value, event.start_mark.line)
        elif kind is yaml.MappingStartEvent:
            if event.tag not in _MAP_TAGS:
                raise YamlError(f"line {event.start_mark.line + 1}: tag {event.tag!r} is not allowed in a sites file")
            frame = _Mapping({}, event.anchor)
            b.anchor(event.anchor, frame.value)
            frame.key_line = event.start_mark.line
            b.stack.append(frame)
        elif kind is yaml.MappingEndEvent:
            value = b.end_mapping()
            b.add(value, event.start_mark.line)
        elif kind is yaml.SequenceStartEvent:
            if event.tag not in _SEQ_TAGS:
                raise YamlError(f"line {event.start_mark.line + 1}: tag {event.tag!r} is not allowed in a sites file")
            seq: list[Any] = []
            b.anchor(event.anchor, seq)
            b.stack.append(seq)
        elif kind is yaml.SequenceEndEvent:
            b.add(b.stack.pop(), event.start_mark.line)
        elif kind is yaml.AliasEvent:
            if event.anchor not in b.anchors:
                raise YamlError(f"line {event.start_mark.line + 1}: alias *{event.anchor} names no anchor defined before it")
            b.add(b.anchors[event.anchor], event.start_mark.line)
        elif kind is yaml.DocumentStartEvent and b.documents:
            raise YamlError(f"line {event.start_mark.line + 1}: a second YAML document; a sites file holds one")
    return b.documents[0] if b.documents else None
