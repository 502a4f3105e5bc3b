"""Writes UI-format workflows (what users import) from short graph descriptions and /object_info.

The descriptions in build_workflows.py name nodes, widget values and links by input/output name; slots,
link ids, socket lists and node order come from the live node definitions, so files never drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COLUMN_WIDTH, ROW_HEIGHT = 380, 260


@dataclass(eq=False)
class Node:
    id: int
    type: str
    widgets: list
    column: int
    row: int
    title: str | None = None
    inputs: dict[str, tuple[Node, str]] = field(default_factory=dict)


class Graph:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(self, type: str, *widgets, column: int, row: int, title: str | None = None, **inputs) -> Node:
        """A node; keyword arguments link inputs to (node, output name) pairs."""
        node = Node(len(self.nodes) + 1, type, list(widgets), column, row, title)
        for name, source in inputs.items():
            if source is not None:
                node.inputs[name] = source
        self.nodes.append(node)
        return node

    def to_ui(self, object_info: dict, models: list[dict], description: str, note: str | None = None) -> dict:
        """The UI-format workflow; `note` becomes a Markdown note above the graph (a frontend-only node)."""
        links, ui_nodes = [], []
        outputs = {}  # (node id, output name) -> (slot, type, [link ids])
        for node in self.nodes:
            info = object_info[node.type]
            for slot, (name, kind) in enumerate(zip(info["output_name"], info["output"])):
                outputs[(node.id, name)] = (slot, kind, [])
        for node in self._execution_order():
            info = object_info[node.type]
            inputs = []
            order = info.get("input_order", {})
            for section in ("required", "optional"):
                for name in order.get(section, []):
                    spec = info["input"][section][name]
                    kind = spec[0]
                    is_widget = isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
                    entry = {"name": name, "type": "COMBO" if isinstance(kind, list) else kind, "link": None}
                    if is_widget:
                        entry["widget"] = {"name": name}
                    if name in node.inputs:
                        source, output = node.inputs[name]
                        slot, out_kind, link_ids = outputs[(source.id, output)]
                        link_id = len(links) + 1
                        links.append([link_id, source.id, slot, node.id, len(inputs), out_kind])
                        link_ids.append(link_id)
                        entry["link"] = link_id
                    elif is_widget:
                        continue  # plain widgets appear in inputs only when they take a link
                    inputs.append(entry)
            unknown = set(node.inputs) - {i["name"] for i in inputs}
            if unknown:
                raise KeyError(f"{node.type} has no inputs named {sorted(unknown)}")
            ui_nodes.append(
                {
                    "id": node.id,
                    "type": node.type,
                    "pos": [40 + node.column * COLUMN_WIDTH, 40 + node.row * ROW_HEIGHT],
                    "size": [340, 220],
                    "flags": {},
                    "order": len(ui_nodes),
                    "mode": 0,
                    "inputs": inputs,
                    "outputs": [],
                    "properties": {"Node name for S&R": node.type},
                    "widgets_values": node.widgets,
                    **({"title": node.title} if node.title else {}),
                }
            )
        for ui_node in ui_nodes:
            info = object_info[ui_node["type"]]
            for name, kind in zip(info["output_name"], info["output"]):
                slot, _, link_ids = outputs[(ui_node["id"], name)]
                ui_node["outputs"].append({"name": name, "type": kind, "links": link_ids, "slot_index": slot})
        if note is not None:
            ui_nodes.append(
                {
                    "id": len(self.nodes) + 1,
                    "type": "MarkdownNote",
                    "pos": [40, 40 - ROW_HEIGHT],
                    "size": [2 * COLUMN_WIDTH - 40, ROW_HEIGHT - 60],
                    "flags": {},
                    "order": len(ui_nodes),
                    "mode": 0,
                    "inputs": [],
                    "outputs": [],
                    "title": "About this workflow",
                    "properties": {},
                    "widgets_values": [note],
                    "color": "#432",
                    "bgcolor": "#653",
                }
            )
        return {
            "last_node_id": len(ui_nodes),
            "last_link_id": len(links),
            "nodes": sorted(ui_nodes, key=lambda n: n["id"]),
            "links": links,
            "groups": [],
            "config": {},
            "extra": {"info": {"description": description}},  # no saved view: the editor fits the graph
            "models": models,
            "version": 0.4,
        }

    def _execution_order(self) -> list[Node]:
        done: list[Node] = []

        def visit(node: Node) -> None:
            if node in done:
                return
            for source, _ in node.inputs.values():
                visit(source)
            done.append(node)

        for node in self.nodes:
            visit(node)
        return done
