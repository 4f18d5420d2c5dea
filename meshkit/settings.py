"""Settings read from the environment, and a bad one reported by its variable's name."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_settings import BaseSettings


def setting_problems(err: ValidationError) -> str:
    """A settings class's validation errors on one line: each variable, its value, why."""
    prefix = _env_prefix(err.title)
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
        for e in err.errors()
    )


def _env_prefix(title: str) -> str:
    # The error names its settings class only by title; find the class to read
    # the prefix its variables carry.
    classes: list[type[BaseSettings]] = [BaseSettings]
    while classes:
        cls = classes.pop()
        if cls.__name__ == title:
            return str(cls.model_config.get("env_prefix") or "")
        classes += cls.__subclasses__()
    return ""
