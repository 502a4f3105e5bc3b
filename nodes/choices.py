"""Combo values checked before a node runs.

ComfyUI 0.3.75 refuses a V1 combo value that is not among its options ("Value not in list") but passes V3
combo values through unchecked, so a prompt from the API, or a workflow saved by another version of the
pack, could reach `execute` with an option that does not exist and fail on a bare KeyError, or silently
run something else. Nodes check their fixed-option combos first.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..multiid_core.errors import MultiIDError


def check_choices(node: type[io.ComfyNode], **values) -> None:
    """Raises MultiIDError for the first value that is not one of its combo's options."""
    options = {i.id: i.options for i in node.define_schema().inputs if isinstance(i, io.Combo.Input)}
    for name, value in values.items():
        if value not in options[name]:
            choices = ", ".join(f"'{o}'" for o in options[name])
            raise MultiIDError(
                f"{name} '{value}' is not an option of {node.define_schema().display_name}; choose one of {choices} "
                f"(a workflow saved by another version of MultiID may name an option that has changed)."
            )
