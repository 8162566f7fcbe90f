"""Named handler outputs: a handler returns a frozen dataclass whose fields name the components it
updates; ``Outputs`` binds each field to its component, and ``listen`` turns the result into the
positional list Gradio expects, in that one place.

A field left at ``KEEP`` leaves its component as it is (Gradio's ``skip()``).
"""

from __future__ import annotations

import functools
from dataclasses import fields, is_dataclass
from typing import Callable

import gradio as gr


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


class Outputs:
    """The components a handler's result goes to, one per field of ``result_type``, bound by name."""

    def __init__(self, result_type: type, **components) -> None:
        if not (is_dataclass(result_type) and result_type.__dataclass_params__.frozen):
            raise TypeError(f"{result_type.__name__} is not a frozen dataclass")
        self.result_type = result_type
        self.names = [f.name for f in fields(result_type)]
        if sorted(self.names) != sorted(components):
            raise TypeError(f"{result_type.__name__} fields {self.names} != components {sorted(components)}")
        self.components = [components[n] for n in self.names]

    def values(self, result) -> list:
        """The result as Gradio's output list, in the order of ``components``."""
        if not isinstance(result, self.result_type):
            raise TypeError(f"expected {self.result_type.__name__}, got {type(result).__name__}")
        return [gr.skip() if (v := getattr(result, n)) is KEEP else v for n in self.names]


def listen(event: Callable, fn: Callable, inputs, outputs: Outputs, **kwargs):
    """``event(fn, inputs, outputs)`` for a handler that returns a named result."""

    @functools.wraps(fn)
    def handler(*args):
        values = outputs.values(fn(*args))
        return values if len(values) > 1 else values[0]

    return event(handler, inputs, outputs.components, **kwargs)
