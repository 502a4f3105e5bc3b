"""Every fixed-option combo, every float and every linked input is checked when the prompt is queued (V3
validate_inputs), before anything runs: options the node does not offer, NaN and infinities (ComfyUI's own
range check lets NaN pass), plain values sent where a link to another node's output belongs."""

import inspect


def pack_nodes(node_classes) -> dict:
    return {name: cls for name, cls in node_classes.items() if name.startswith("MultiID_")}


# Combos listing files found in the model folders: the loaders resolve those names when they run, and refuse
# any name that is not a found file (tests/reliability/test_unsafe_files.py).
FILE_COMBOS = {"model", "vae", "source", "antelopev2", "eva_clip", "face_parser", "text_encoder", "adapter"}


def fixed_combos(cls) -> dict[str, list]:
    from comfy_api.latest import io  # importable once the node_classes fixture has loaded ComfyUI

    combos = {i.id: i.options for i in cls.define_schema().inputs if isinstance(i, io.Combo.Input)}
    return {name: options for name, options in combos.items() if name not in FILE_COMBOS}


def floats(cls) -> dict:
    from comfy_api.latest import io

    return {i.id: i for i in cls.define_schema().inputs if isinstance(i, io.Float.Input)}


def links(cls) -> dict:
    """Inputs fed by another node's output (no widget)."""
    from comfy_api.latest import io

    return {i.id: i for i in cls.define_schema().inputs if not isinstance(i, io.WidgetInput)}


def validated(cls) -> list[str]:
    """The inputs a node's validate_inputs names (the base class's takes **kwargs and checks nothing)."""
    parameters = inspect.signature(cls.validate_inputs).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def test_every_fixed_combo_is_validated_and_only_those_inputs(node_classes):
    for name, cls in pack_nodes(node_classes).items():
        combos = fixed_combos(cls)
        checked = validated(cls)
        allowed = set(combos) | set(floats(cls)) | set(links(cls))
        assert set(checked) <= allowed, f"{name} validates {checked}: only combos, floats and links"
        missing = {c for c in combos if c not in checked and len(combos[c]) > 1} | (set(floats(cls)) - set(checked))
        assert not missing, f"{name}: {missing} are not validated"


def test_every_linked_input_is_validated(node_classes):
    """ComfyUI passes a plain value given for a linked input through to execute; only validate_inputs sees it."""
    for name, cls in pack_nodes(node_classes).items():
        missing = set(links(cls)) - set(validated(cls))
        assert not missing, f"{name}: {missing} are not validated"


def test_plain_values_where_links_belong_name_the_node_to_connect(node_classes):
    checked_any = 0
    for cls in pack_nodes(node_classes).values():
        display = cls.define_schema().display_name
        for name in set(links(cls)) & set(validated(cls)):
            assert cls.validate_inputs(**{name: None}) is True  # a link: its value is known only at run time
            message = cls.validate_inputs(**{name: 5})
            assert message.startswith(f"{name} of {display} takes the output of "), message
            assert message.endswith("not the value 5. Connect it to that node's output (in an API prompt, a link is "
                                    "[node_id, output_index]).")  # fmt: skip
            checked_any += 1
    sampler = node_classes["MultiID_Sampler"]
    assert "the output of Encode Identity or ID Router, not" in sampler.validate_inputs(identity=5)
    assert "the output of Load MultiID Video Model, not" in sampler.validate_inputs(vae=5)
    made_by = "the output of Load MultiID Video Model or Load Concat-ID Wan Model (Stand-In and Phantom: ComfyUI's"
    assert made_by in sampler.validate_inputs(model=5)
    assert "the output of a node with a CONDITIONING output, not" in sampler.validate_inputs(positive=5)
    encode = node_classes["MultiID_EncodeIdentity"]  # takes lists; a link arrives as (None,)
    assert encode.validate_inputs(face_extractor=(None,), photos=(None,)) is True
    assert "of Load Face Extractor, not the value 'x'" in encode.validate_inputs(face_extractor=["x"])
    assert checked_any >= 20


def test_offered_options_pass_and_others_are_refused_with_the_choices(node_classes):
    checked_any = 0
    for cls in pack_nodes(node_classes).values():
        names = validated(cls)
        options = fixed_combos(cls)
        for input_name in (n for n in names if n in options):
            for option in options[input_name]:
                assert cls.validate_inputs(**{input_name: option}) is True
            assert cls.validate_inputs(**{input_name: None}) is True  # fed by a link: known only at run time
            message = cls.validate_inputs(**{input_name: "no-such-option"})
            display = cls.define_schema().display_name
            assert message.startswith(f"{input_name} 'no-such-option' is not an option of {display}; choose one of ")
            assert all(f"'{o}'" in message for o in options[input_name])
            checked_any += 1
    assert checked_any >= 15


def test_a_node_taking_lists_gets_each_value_checked(node_classes):
    """Encode Identity takes its inputs as lists (several photos): ComfyUI validates with lists too."""
    encode = node_classes["MultiID_EncodeIdentity"]
    assert encode.define_schema().is_input_list
    assert encode.validate_inputs(face=["largest"]) is True
    assert encode.validate_inputs(face=["central", "biggest"]).startswith("face 'biggest' is not an option")


def test_floats_must_be_finite_and_in_range(node_classes):
    checked_any = 0
    for cls in pack_nodes(node_classes).values():
        display = cls.define_schema().display_name
        for name, spec in floats(cls).items():
            assert cls.validate_inputs(**{name: spec.default}) is True
            assert cls.validate_inputs(**{name: spec.min}) is True and cls.validate_inputs(**{name: spec.max}) is True
            for bad in (float("nan"), float("inf"), float("-inf")):
                message = cls.validate_inputs(**{name: bad})
                assert message.startswith(f"{name} of {display} is {bad}, not a number ComfyUI can use"), message
                assert f"from {spec.min} to {spec.max}, default {spec.default}" in message
            above = cls.validate_inputs(**{name: spec.max + 1})
            assert above == f"{name} of {display} is {spec.max + 1}, outside its range (from {spec.min} to " + (
                f"{spec.max}, default {spec.default})."
            )
            assert cls.validate_inputs(**{name: "6"}) == f"{name} of {display} must be a number, not '6'."
            checked_any += 1
    # cfg and identity_strength (Sampler), identity_strength, prior_strength, cfg (guider), strength (VACE References)
    assert checked_any == 6


def test_checks_do_not_scan_the_model_folders_each_time_a_prompt_is_queued(node_classes, monkeypatch):
    """A loader's schema lists the files in the model folders; validating its fixed options must not list them
    again for every prompt (a slow network drive made each queue wait)."""
    import folder_paths

    scans = []
    listing = folder_paths.get_filename_list
    monkeypatch.setattr(folder_paths, "get_filename_list", lambda kind: scans.append(kind) or listing(kind))
    loaders = [node_classes[n] for n in ("MultiID_LoadModel", "MultiID_LoadConcatIDWan", "MultiID_LoadTextEncoder")]
    loaders[0].validate_inputs(precision="bf16", weight_storage="same as precision")  # read once, maybe here
    loaders[1].validate_inputs(weight_dtype="default")
    loaders[2].validate_inputs(precision="auto", device="default")
    scans.clear()
    for _ in range(3):
        assert loaders[0].validate_inputs(precision="bf16", weight_storage="same as precision") is True
        assert loaders[1].validate_inputs(weight_dtype="default") is True
        assert loaders[2].validate_inputs(precision="auto", device="default") is True
    assert scans == []
    assert "fp64" in loaders[0].validate_inputs(precision="fp64", weight_storage="same as precision")
    assert node_classes["MultiID_LoadModel"].define_schema() is not None and scans  # the editor's read still lists
