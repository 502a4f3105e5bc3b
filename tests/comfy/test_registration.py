"""The pack loads through ComfyUI's own loader and every node schema is valid."""

import pytest

PACK_NODES = {"MultiID_LoadFaceExtractor", "MultiID_EncodeIdentity"}


def test_pack_registers_its_nodes(node_classes):
    assert PACK_NODES <= set(node_classes)


@pytest.mark.parametrize("node_id", sorted(PACK_NODES))
def test_schema_validates_with_tooltips_and_category(node_classes, node_id):
    cls = node_classes[node_id]
    schema = cls.GET_SCHEMA()  # validates ids, duplicate names, output types
    info = cls.GET_NODE_INFO_V1()
    assert info["category"].startswith("MultiID/")
    assert info["description"]
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert schema.node_id == node_id


def test_the_interface_saved_workflows_depend_on_is_unchanged(node_classes):
    """Node ids, input names and types, fixed options and outputs are what saved workflows and API prompts name;
    moving code (or anything else) must not change them by accident."""
    import json

    from node_interface import SAVED, interface

    saved, now = json.loads(SAVED.read_text()), interface(node_classes)
    assert sorted(now) == sorted(saved), "node ids changed"
    for node_id, spec in saved.items():
        assert now[node_id] == spec, f"{node_id}: its inputs or outputs changed (see tests/comfy/node_interface.py)"
