"""Several people in one video: who is who, where they go, and how video tokens choose between them."""

from __future__ import annotations

from comfy_api.latest import io

from ...multiid_core.errors import MultiIDError
from ...multiid_core.routing import ROUTING_MODES, IdentitySet
from .. import types
from ..input_checks import valid_inputs

MAX_IDENTITIES = 4
CFG_ROUTING = ("as released (unconditional branch)", "per branch")


class IDRouter(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        identity_inputs, mask_inputs = [], []
        for i in range(1, MAX_IDENTITIES + 1):
            identity_inputs.append(
                types.Identity.Input(
                    f"identity_{i}",
                    optional=i > 1,
                    tooltip=f"Person {i} (from Encode Identity). Order decides who is who: mask_{i} places this "
                    f"person, and the routing map shows them in colour {i}.",
                )
            )
            mask_inputs.append(
                io.Mask.Input(
                    f"mask_{i}",
                    optional=True,
                    tooltip=f"Where person {i} appears: one mask for the whole video, or one per frame (49) to "
                    f"move them. Stretched to the video size. Needed for the mask routing modes; with 'learned' "
                    f"it only places the face in the first frame.",
                )
            )
        return io.Schema(
            node_id="MultiID_IDRouter",
            display_name="ID Router",
            category=f"{types.CATEGORY}/identity",
            description="Puts several people in one video. With the Ingredients model a learned router sends each "
            "video token to one person; with masks you decide where each person goes, which also works with "
            "ConsisID's single-identity weights.",
            inputs=[
                *identity_inputs,
                *mask_inputs,
                io.Combo.Input(
                    "routing",
                    options=list(ROUTING_MODES),
                    default="learned",
                    tooltip="learned: Ingredients' router decides (as released). masks: a token inside person k's "
                    "mask gets only person k; outside every mask, nobody (works with ConsisID too). learned + "
                    "masks: the router, nudged towards the masks by prior_strength.",
                ),
                io.Float.Input(
                    "prior_strength",
                    default=1.0,
                    min=0.0,
                    max=20.0,
                    step=0.1,
                    tooltip="With 'learned + masks': how strongly masks pull the router (0: router alone; about 5 "
                    "and up: nearly the masks).",
                ),
                io.Combo.Input(
                    "cfg_routing",
                    options=list(CFG_ROUTING),
                    default=CFG_ROUTING[0],
                    tooltip="As released, Ingredients routes on the unconditional branch and adds the same identity "
                    "features to both guidance branches. 'per branch' routes each branch on its own tokens.",
                ),
            ],
            outputs=[types.Identities.Output(display_name="identities")],
        )

    @classmethod
    def validate_inputs(
        cls, routing=None, cfg_routing=None, prior_strength=None,
        identity_1=None, identity_2=None, identity_3=None, identity_4=None,
        mask_1=None, mask_2=None, mask_3=None, mask_4=None,
    ) -> bool | str:  # fmt: skip
        return valid_inputs(
            cls, routing=routing, cfg_routing=cfg_routing, prior_strength=prior_strength,
            identity_1=identity_1, identity_2=identity_2, identity_3=identity_3, identity_4=identity_4,
            mask_1=mask_1, mask_2=mask_2, mask_3=mask_3, mask_4=mask_4,
        )  # fmt: skip

    @classmethod
    def execute(cls, routing, prior_strength, cfg_routing, **inputs) -> io.NodeOutput:
        identities, masks = [], []
        for i in range(1, MAX_IDENTITIES + 1):
            identity, mask = inputs.get(f"identity_{i}"), inputs.get(f"mask_{i}")
            if identity is None:
                if mask is not None:
                    raise MultiIDError(
                        f"mask_{i} is connected but identity_{i} is not: connect person {i}, or the mask."
                    )
                continue
            if len(identities) != i - 1:
                raise MultiIDError(
                    f"identity_{i} is connected but identity_{len(identities) + 1} is not: connect people in order."
                )
            identities.append(identity)
            masks.append(mask)
        if routing != "learned" and any(m is None for m in masks):
            missing = [f"mask_{i + 1}" for i, m in enumerate(masks) if m is None]
            raise MultiIDError(f"Routing mode '{routing}' needs a mask for every person; connect {', '.join(missing)}.")
        return io.NodeOutput(
            IdentitySet(
                identities=identities,
                masks=masks,
                mode=routing,
                prior_strength=prior_strength,
                per_branch=cfg_routing == "per branch",
            )
        )
