"""Input values checked before a prompt runs, where the editor can show the problem on the node.

ComfyUI 0.3.75 refuses a V1 combo value that is not among its options ("Value not in list") but passes V3
combo values through unchecked, so a prompt from the API, or a workflow saved by another version of the
pack, could reach `execute` with an option that does not exist and fail on a bare KeyError, or silently
run something else. Its min/max check lets NaN through (every comparison with NaN is false), and a NaN cfg
or strength gives a black video reported as a success. Each node names its fixed-option combos and its
floats in its V3 `validate_inputs`, which ComfyUI runs when the prompt is queued: a wrong value is refused
before anything runs, with the message on the node. Inputs must be named there (not **kwargs): ComfyUI
skips its own checks for every input a `validate_inputs` takes, so the numbers' min/max are checked here.

Inputs fed by another node (the pack's types, IMAGE, CONDITIONING, ...) are named there too: ComfyUI does
not check them, so a plain value sent through the API where a link belongs would reach `execute` and fail
on an attribute error. Here it is refused with the node whose output the input takes.
"""

from __future__ import annotations

import functools
import math

from comfy_api.latest import io

from .types import MADE_BY


def valid_inputs(node: type[io.ComfyNode], **values) -> bool | str:
    """True, or the message for the first value that is not one of its combo's options, or a number that is
    not finite or outside its input's range.

    A value of None is an input fed by a link: its value is not known when the prompt is validated. A node
    that takes its inputs as lists (is_input_list) gets a list of values for each, and (None,) for a link."""
    display_name, inputs = input_specs(node)
    for name, given in values.items():
        for value in given if isinstance(given, (list, tuple)) else [given]:
            problem = None if value is None else _problem(inputs[name], value, display_name)
            if problem:
                return problem
    return True


@functools.cache
def input_specs(node: type[io.ComfyNode]) -> tuple[str, dict[str, io.Input]]:
    """(display name, inputs by id) of a node, read once: a loader's schema lists the model folders' files, and a
    check must not scan the disks each time a prompt is queued. Only inputs whose options never change (fixed
    combos, numbers, links) are checked here, so the files found at the first read do not matter."""
    schema = node.define_schema()
    return schema.display_name, {i.id: i for i in schema.inputs}


def _problem(spec: io.Input, value, node: str) -> str | None:
    name = spec.id
    if not isinstance(spec, io.WidgetInput):
        return _not_a_link(spec, value, node)
    if isinstance(spec, io.Combo.Input):
        if value in spec.options:
            return None
        choices = ", ".join(f"'{o}'" for o in spec.options)
        return (
            f"{name} '{value}' is not an option of {node}; choose one of {choices} "
            f"(a workflow saved by another version of MultiID may name an option that has changed)."
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} of {node} must be a number, not {value!r}."
    if not math.isfinite(value):
        return f"{name} of {node} is {value}, not a number ComfyUI can use; set it to a finite value ({_range(spec)})."
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        return f"{name} of {node} is {value}, outside its range ({_range(spec)})."
    return None


def _range(spec: io.Input) -> str:
    return f"from {spec.min} to {spec.max}, default {spec.default}"


def _not_a_link(spec: io.Input, value, node: str) -> str:
    """A value given where a link belongs (links are None at validation): say whose output the input takes."""
    kinds = str(spec.get_io_type()).split(",")
    sources = " or ".join(MADE_BY.get(kind, f"a node with a {kind} output") for kind in kinds)
    return (
        f"{spec.id} of {node} takes the output of {sources}, not the value {value!r}. Connect it to that node's "
        f"output (in an API prompt, a link is [node_id, output_index])."
    )
