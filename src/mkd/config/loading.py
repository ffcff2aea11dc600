"""Reading a recipe: a YAML path or a packaged recipe's name, `--set` overrides applied to the raw
mapping before validation (so they are type-checked exactly like the file), and pydantic's errors
turned into one line that names the key and the nearest valid one."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mkd.config.presets import apply_preset
from mkd.config.schema import Recipe
from mkd.config.typed_values import apply_override, parse_overrides
from mkd.errors import MkdError, nearest

DEFAULT_RECIPE = "demo"


def packaged_recipes() -> list[str]:
    folder = resources.files("mkd") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_source(source: str | Path | None) -> tuple[str, str]:
    """Text and display name of a recipe: a path, or the name of a packaged recipe."""
    if source is None:
        source = DEFAULT_RECIPE
    path = Path(source)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as e:
            raise MkdError(f"recipe {path} is not UTF-8 text", "save it as UTF-8 YAML") from e
    name = str(source)
    if name in packaged_recipes():
        text = (resources.files("mkd") / "recipes" / f"{name}.yaml").read_text(encoding="utf-8")
        return text, f"{name} (packaged)"
    if path.suffix in (".yaml", ".yml") or "/" in name:
        raise MkdError(f"recipe file {path} not found", "check the path given to -c")
    raise MkdError(
        f"no recipe file or packaged recipe named '{name}'",
        f"give a YAML path, or one of: {', '.join(packaged_recipes())}",
    )


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid field names of the (sub)model that a validation error location points into."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        if field is None:  # a dict key (a task name) or a union's tag: the model stays the same
            continue
        current = _model_of(field.annotation)
    return list(current.model_fields) if current is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _explain(error: ValidationError, where: str) -> MkdError:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        close = nearest(str(loc[-1]), _fields_at(Recipe, loc))
        fix = f"did you mean '{close}'?" if close else "remove it (see the recipe format in README.md)"
        return MkdError(f"recipe {where}: unknown key '{dotted}'", fix)
    if first["type"] == "missing":
        return MkdError(f"recipe {where}: '{dotted}' is required", "add it")
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    return MkdError(f"recipe {where}: '{dotted}' {msg} (got {shown[:60]})", "fix that value")


def load_recipe(source: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe. Any problem is one MkdError line."""
    text, where = _read_source(source)
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:  # a tag such as !!python/object: code, not data
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = str(e.problem or "")
        tag = problem.split("'")[1].replace("tag:yaml.org,2002:", "!!") if problem.count("'") >= 2 else "a tag"
        raise MkdError(f"recipe {where} uses the YAML tag {tag}{at}, which mkd refuses (a recipe is plain data "
                       "and never runs code)", "remove the tag and write the value as plain YAML") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MkdError(f"recipe {where} is malformed YAML{at}", "fix the syntax there") from e
    if not isinstance(data, dict):
        raise MkdError(f"recipe {where} is not a mapping of sections", "start from recipes/demo.yaml")
    default_student = "student" not in data
    for path, value in parse_overrides(overrides, Recipe):
        apply_override(data, path, value)
    data = apply_preset(data, where, default_student)
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise _explain(e, where) from None
