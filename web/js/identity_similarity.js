// Identity Similarity: show the text summary on the node, under the plot the frontend already shows.
import { app } from "../../../scripts/app.js";

const NODE = "MultiID_IdentitySimilarity";
const PLACEHOLDER = "Run the workflow: the per-identity scores appear here.";

function summaryWidget(node) {
  const existing = node.widgets?.find((w) => w.name === "summary");
  if (existing) return existing;
  const area = document.createElement("textarea");
  area.readOnly = true;
  area.placeholder = PLACEHOLDER;
  area.className = "comfy-multiline-input";
  area.style.fontFamily = "monospace";
  area.style.fontSize = "11px";
  area.style.whiteSpace = "pre";
  const widget = node.addDOMWidget("summary", "multiid_summary", area, {
    getValue: () => area.value,
    setValue: (value) => {
      area.value = value ?? "";
    },
    getMinHeight: () => 120,
    serialize: false, // not an input: never saved in the workflow nor sent to the server
  });
  widget.serialize = false;
  return widget;
}

app.registerExtension({
  name: "MultiID.IdentitySimilarity",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      summaryWidget(this);
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      summaryWidget(this).value = (message?.text ?? []).join("\n");
    };
  },
});
