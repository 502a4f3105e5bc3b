"""Combo values checked before a prompt runs, where the editor can show the problem on the node.

ComfyUI 0.3.75 refuses a V1 combo value that is not among its options ("Value not in list") but passes V3
combo values through unchecked, so a prompt from the API, or a workflow saved by another version of the
pack, could reach `execute` with an option that does not exist and fail on a bare KeyError, or silently
run something else. Each node with fixed options names them in its V3 `validate_inputs`, which ComfyUI runs
when the prompt is queued: a wrong value is refused before anything runs, with this message on the node.
Inputs must be named there (not **kwargs): ComfyUI skips its own min/max checks for every input a
`validate_inputs` takes, so taking only the combos keeps those checks.
"""

from __future__ import annotations

from comfy_api.latest import io


def valid_choices(node: type[io.ComfyNode], **values) -> bool | str:
    """True, or the message for the first value that is not one of its combo's options.

    A value of None is an input fed by a link: its value is not known when the prompt is validated. A node
    that takes its inputs as lists (is_input_list) gets a list of values for each."""
    schema = node.define_schema()
    options = {i.id: i.options for i in schema.inputs if isinstance(i, io.Combo.Input)}
    for name, given in values.items():
        for value in given if isinstance(given, list) else [given]:
            if value is None or value in options[name]:
                continue
            choices = ", ".join(f"'{o}'" for o in options[name])
            return (
                f"{name} '{value}' is not an option of {schema.display_name}; choose one of {choices} "
                f"(a workflow saved by another version of MultiID may name an option that has changed)."
            )
    return True
