"""Every key the config accepts is documented: docs/ names each one, so a key added to
`poise.config` without a word in docs/configuration.md (or, for a source's own keys,
docs/collectors.md and the others) fails here rather than reaching users unexplained."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from poise.config import PoiseConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"


def config_keys(model: type[BaseModel], path: str = "", seen: set[type] | None = None) -> list[str]:
    """The dotted path of every key a config file may hold (fields marked `exclude` are the
    loader's own: where the file was read from, not keys)."""
    seen = seen if seen is not None else set()
    if model in seen:
        return []
    seen.add(model)
    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        key = field.alias or name
        dotted = f"{path}.{key}" if path else key
        keys.append(dotted)
        for inner in models_in(field.annotation):
            keys += config_keys(inner, dotted, seen)
    return keys


def models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in models_in(arg)]


def documented(key: str, text: str) -> bool:
    """`key`, or a dotted path ending in it (`people.toil_cap`), in backticks; or `key:` in
    a YAML example."""
    name = re.escape(key.rsplit(".", 1)[-1])
    return bool(
        re.search(rf"`(?:[\w\[\]]+\.)*{name}`", text)
        or re.search(rf"^\s*(?:-\s+)?{name}:", text, re.MULTILINE)
    )


def test_every_config_key_is_documented() -> None:
    text = "\n".join(page.read_text(encoding="utf-8") for page in sorted(DOCS.glob("*.md")))
    keys = config_keys(PoiseConfig)
    assert len(keys) > 60  # the walk reached the nested blocks
    assert {"services.github.deploy_branches", "people.toil_cap"} <= set(keys)
    missing = [key for key in keys if not documented(key, text)]
    assert not missing, f"config keys no page of docs/ names: {missing}"


def test_an_undocumented_key_is_found() -> None:
    assert documented("people.toil_cap", "| `people.toil_cap` | `0.5` |")
    assert documented("services.git.branch", "    git:\n      branch: main\n")
    assert not documented("services.git.branch", "the branch to read")
    assert not documented("people.toil_cap", "`toil_capacity`")
