"""Groups of Typer options declared once and added to several commands.

A command declares one keyword-only parameter where a group's options go (``call: RegistryCall``,
``plan: dict[str, Any]``); the decorator shows Typer the group's options in its place and passes the command
the one value built from them. ``--help`` lists the options where the parameter stands.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One option of a group: the Python name, its type and its ``typer.Option``."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def option_group(
    name: str, options: tuple[inspect.Parameter, ...], build: Callable[..., Any]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator: the command's keyword-only parameter ``name`` becomes ``options`` for Typer, and the
    command receives ``build(**their values)`` as ``name``."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(fn, eval_str=True)
        placeholder = sig.parameters.get(name)
        if placeholder is None or placeholder.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{fn.__name__} needs a keyword-only parameter {name!r} for its options")
        params = [q for p in sig.parameters.values() for q in (options if p.name == name else (p,))]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> None:
            values = {p.name: kwargs.pop(p.name) for p in options}
            fn(**kwargs, **{name: build(**values)})

        # Typer reads the options from the signature and their types from the annotations
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return command

    return decorate
