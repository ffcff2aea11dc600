"""`--set key=value`: the value read by the schema's type of `key`, not by YAML 1.1's guesses.

YAML 1.1 reads `no`, `off`, `yes`, `on` as booleans, `null` and `~` as None and `1` as a number.
For a key (or a list item, mapping value) whose type is a string, the user's words stay the
string typed: `--set distill.train.mixed_precision=no` is "no", `--set tasks.0.name=1` is "1".
Everything else (numbers, booleans, lists of numbers, None for optional numbers) is read as YAML.
The overrides are parsed here and applied to the raw recipe mapping before validation (mkd.config).
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from mkd.errors import MkdError


def _members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union (`X | None`), or the annotation itself; `Annotated[...]` wrappers
    (a discriminated union such as TeacherRef) are looked through."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(m for a in get_args(annotation) for m in _members(a))
    return (annotation,)


def wants_text(annotation: Any) -> bool:
    """True when a scalar given for this type must stay text: str, a Literal of strings, a model
    with a string shorthand (a task), or a union holding one of those."""
    for member in _members(annotation):
        if member is str:
            return True
        if get_origin(member) is Literal and all(isinstance(a, str) for a in get_args(member)):
            return True
        if isinstance(member, type) and issubclass(member, BaseModel) and "name" in member.model_fields \
                and member.model_fields["name"].annotation is str:
            return True  # TaskConfig: "snli" is {"name": "snli"}
    return False


def only_text(annotation: Any) -> bool:
    """True for a plain string type (str, a Literal of strings, optionally None): its value is the
    text typed, never parsed."""
    members = [m for m in _members(annotation) if m is not type(None)]
    return bool(members) and all(m is str or (get_origin(m) is Literal and all(isinstance(a, str) for a in get_args(m)))
                                 for m in members)


def child(annotation: Any, key: str) -> Any:
    """The type found under `key` of a value of this type (a model's field, a list's item, a
    mapping's value); None when unknown (the validation then names the problem)."""
    found = []
    for member in _members(annotation):
        origin = get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(key)
            if field is not None:
                found.append(field.annotation)
        elif origin is list and get_args(member):
            found.append(get_args(member)[0])
        elif origin is dict and len(get_args(member)) == 2:
            found.append(get_args(member)[1])
    if not found:
        return None
    return found[0] if len(found) == 1 else Union[tuple(found)]  # noqa: UP007 (a runtime union of types)


def _merge(parsed: Any, words: Any, annotation: Any) -> Any:
    """`parsed` (YAML's reading) with every scalar whose type wants text replaced by the words
    typed (`words`: the same YAML read with every scalar as a string)."""
    if annotation is None:
        return parsed
    if isinstance(parsed, dict) and isinstance(words, dict) and len(parsed) == len(words):
        return {wk: _merge(pv, wv, child(annotation, wk))
                for (_, pv), (wk, wv) in zip(parsed.items(), words.items(), strict=True)}
    if isinstance(parsed, list) and isinstance(words, list) and len(parsed) == len(words):
        item = child(annotation, "0")
        return [_merge(p, w, item) for p, w in zip(parsed, words, strict=True)]
    if isinstance(words, str) and not isinstance(parsed, (dict, list)) and wants_text(annotation):
        return words
    return parsed


def _words(node: yaml.Node | None) -> Any:
    """A YAML node tree as plain data with every scalar kept as the text written (nothing is
    constructed: no tags, no type guesses)."""
    if isinstance(node, yaml.SequenceNode):
        return [_words(item) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        return {str(_words(k)): _words(v) for k, v in node.value}
    return node.value if isinstance(node, yaml.ScalarNode) else None


def annotation_at(model: type[BaseModel], path: list[str]) -> Any:
    """The type of the value at a dotted override path (list items by index or task name)."""
    current: Any = model
    for key in path:
        current = child(current, key)
        if current is None:
            return None
    return current


def typed_value(model: type[BaseModel], path: list[str], raw: str) -> Any:
    """The value of `--set path=raw`, read by the schema's type at `path`."""
    annotation = annotation_at(model, path)
    if annotation is not None and only_text(annotation):
        return raw  # the words typed, e.g. "no", "1", "null", "data/x #2.csv"
    parsed = yaml.safe_load(raw) if raw.strip() else ""
    if annotation is not None and wants_text(annotation) and not isinstance(parsed, (dict, list)):
        return raw  # the words typed, e.g. "no", "1", "null"
    if isinstance(parsed, (dict, list)):
        return _merge(parsed, _words(yaml.compose(raw, Loader=yaml.SafeLoader)), annotation)
    return parsed


def split_overrides(overrides: list[str] | None) -> list[tuple[str, list[str], str]]:
    """(item, dotted path, the value's text as typed) of each `--set key=value`."""
    split = []
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise MkdError(f"override '{item}' is not key=value", "write it as --set teacher.max_length=64")
        split.append((item, key.strip().split("."), raw))
    return split


def parse_overrides(overrides: list[str] | None, schema: type[BaseModel] | None = None) -> list[tuple[list[str], Any]]:
    """Overrides as (path, value): with a schema, a string-typed key keeps the words typed
    (typed_value); without one, values are read as YAML."""
    parsed = []
    for item, path, raw in split_overrides(overrides):
        try:
            value = (typed_value(schema, path, raw) if schema is not None
                     else yaml.safe_load(raw) if raw.strip() else "")
        except yaml.YAMLError as e:
            raise MkdError(f"override '{item}' has a malformed value", "quote it as YAML") from e
        parsed.append((path, value))
    return parsed


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `path` (keys, list indices or task names) of a raw recipe mapping to `value`."""
    node: Any = data
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            idx = _list_index(node, key, ".".join(path))
            if last:
                node[idx] = value
                return
            if isinstance(node[idx], str):  # task shorthand: "snli" -> {"name": "snli"}
                node[idx] = {"name": node[idx]}
            node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[key] = value
                return
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        else:
            raise MkdError(f"override {'.'.join(path)}: '{path[i - 1]}' is not a section", "check the key")


def _list_index(node: list[Any], key: str, full: str) -> int:
    if key.lstrip("-").isdigit():
        idx = int(key)
        if -len(node) <= idx < len(node):
            return idx
        raise MkdError(f"override {full}: index {key} is out of range", f"the list has {len(node)} items")
    for idx, item in enumerate(node):
        name = item if isinstance(item, str) else item.get("name") if isinstance(item, dict) else None
        if name == key:
            return idx
    raise MkdError(f"override {full}: no item named '{key}'", "use an index or a task name of the recipe")
