"""Nodes that turn photos of people into identities."""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management as mm
import comfy.utils
import numpy as np
import torch
from comfy_api.latest import io, ui

from ...multiid_core.faces.detection import ONNX_PROVIDERS, FaceDetector
from ...multiid_core.faces.eva_clip import load_eva_clip
from ...multiid_core.faces.extractor import FACE_CHOICES, FaceExtractor, encode_identity, photo_frames
from ...multiid_core.faces.parsing import load_face_parser
from ...multiid_core.faces.previews import draw_detections
from .. import model_folders, types
from ..input_checks import valid_inputs
from ..memory import compute_dtype, patcher
from ..schema import precision_input

NO_EVA = "none (enough for Concat-ID)"


@dataclass
class LoadedFaceExtractor:
    """The core extractor plus the ModelPatchers through which ComfyUI moves its torch parts."""

    core: FaceExtractor
    patchers: list

    def load(self) -> None:
        mm.load_models_gpu(self.patchers)


class LoadFaceExtractor(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_LoadFaceExtractor",
            display_name="Load Face Extractor",
            category=f"{types.CATEGORY}/identity",
            description="Loads the face models every MultiID method uses: insightface antelopev2 (detection and "
            "ArcFace), EVA02-CLIP-L-14-336 and the BiSeNet face parser.",
            inputs=[
                io.Combo.Input(
                    "antelopev2",
                    options=model_folders.choice_list("antelopev2"),
                    tooltip="Folder with scrfd_10g_bnkps.onnx and glintr100.onnx: the face_encoder/models/antelopev2 "
                    "folder of the ConsisID-preview or Ingredients snapshot under models/multiid, or "
                    "models/insightface/models/antelopev2 (the folder InstantID and PuLID use).",
                ),
                io.Combo.Input(
                    "eva_clip",
                    options=[*model_folders.choice_list("eva_clip"), NO_EVA],
                    tooltip="EVA02_CLIP_L_336_psz14_s6B.pt, from the snapshot's face_encoder folder. ConsisID and "
                    "Ingredients need it; Concat-ID does not (choose 'none' to skip the 856 MB download).",
                ),
                io.Combo.Input(
                    "face_parser",
                    options=model_folders.choice_list("face_parser"),
                    tooltip="parsing_bisenet.pth (BiSeNet face parsing), from the snapshot's face_encoder folder or "
                    "models/facexlib.",
                ),
                io.Combo.Input(
                    "onnx_provider",
                    options=list(ONNX_PROVIDERS),
                    default="auto",
                    tooltip="Where insightface runs. auto uses the GPU when onnxruntime-gpu (or ROCm/CoreML builds) "
                    "can, and falls back to CPU with a warning otherwise.",
                ),
                precision_input(
                    "Precision of EVA-CLIP and the face parser. auto: bf16 on GPUs that support it (the "
                    "authors' setting), fp32 on the CPU."
                ),
            ],
            outputs=[types.FaceExtractor.Output(display_name="face_extractor")],
        )

    @classmethod
    def validate_inputs(cls, onnx_provider=None, precision=None) -> bool | str:
        return valid_inputs(cls, onnx_provider=onnx_provider, precision=precision)

    @classmethod
    def execute(cls, antelopev2, eva_clip, face_parser, onnx_provider, precision) -> io.NodeOutput:
        dtype = compute_dtype(precision)
        offload = mm.unet_offload_device()
        eva = None if eva_clip == NO_EVA else load_eva_clip(model_folders.resolve("eva_clip", eva_clip), offload, dtype)
        core = FaceExtractor(
            detector=FaceDetector(model_folders.resolve("antelopev2", antelopev2), provider=onnx_provider),
            parser=load_face_parser(model_folders.resolve("face_parser", face_parser), offload, dtype),
            eva=eva,
        )
        modules = [core.parser] + ([core.eva] if core.eva is not None else [])
        return io.NodeOutput(LoadedFaceExtractor(core, [patcher(m) for m in modules]))


def _image_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 pictures -> IMAGE batch; pictures of differing sizes are padded to the largest (black)."""
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    batch = np.zeros((len(arrays), height, width, 3), dtype=np.uint8)
    for i, a in enumerate(arrays):
        batch[i, : a.shape[0], : a.shape[1]] = a
    return torch.from_numpy(batch).float().div(255.0).to(mm.intermediate_device())


def _first(value):
    """A widget or single input of a list-input node (a one-item list when ComfyUI runs it)."""
    return value[0] if isinstance(value, list) else value


class EncodeIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_EncodeIdentity",
            display_name="Encode Identity",
            category=f"{types.CATEGORY}/identity",
            description="Turns one or more photos of ONE person into an identity for the MultiID samplers. Use one "
            "node per person.",
            is_input_list=True,
            inputs=[
                types.FaceExtractor.Input("face_extractor", tooltip="From Load Face Extractor."),
                io.Image.Input(
                    "photos",
                    tooltip="One or more photos of the same person: a batch, or a list of photos of different sizes "
                    "(e.g. from Load Image Dataset from Folder). The first photo gives the face shown in the first "
                    "frame; all photos contribute to the identity features (their perceiver tokens are averaged).",
                ),
                io.Combo.Input(
                    "face",
                    options=list(FACE_CHOICES),
                    default="largest",
                    tooltip="Which face to take when a photo shows several people: the largest (the authors' "
                    "choice), the one numbered face_index counting from the left, or the most central one.",
                ),
                io.Int.Input(
                    "face_index",
                    default=0,
                    min=0,
                    max=63,
                    tooltip="With face = index: the face to take, numbered from 0 left to right as drawn on the "
                    "detections preview.",
                ),
                io.String.Input(
                    "label",
                    default="",
                    optional=True,
                    tooltip="A name for this person, shown on routing maps and identity scores.",
                ),
            ],
            outputs=[
                types.Identity.Output(display_name="identity"),
                io.Image.Output(display_name="aligned_faces", tooltip="The aligned 512x512 face of each photo."),
                io.Image.Output(
                    display_name="detections",
                    tooltip="Each photo with every detected face boxed and numbered left to right; the chosen face "
                    "is green.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, face_extractor=None, photos=None, face=None) -> bool | str:
        return valid_inputs(cls, face_extractor=face_extractor, photos=photos, face=face)

    @classmethod
    def execute(cls, face_extractor, photos, face, face_index, label="") -> io.NodeOutput:
        # is_input_list: every input arrives as a list, so photos of several sizes (a list) make ONE identity
        # rather than one identity, and so one video, per photo.
        face_extractor, face, face_index, label = (_first(v) for v in (face_extractor, face, face_index, label))
        photos = photo_frames(photos)
        face_extractor.load()
        progress = comfy.utils.ProgressBar(len(photos))

        def on_photo(done: int) -> None:
            mm.throw_exception_if_processing_interrupted()
            progress.update_absolute(done)

        identity, seen = encode_identity(face_extractor.core, photos, face, face_index, label, on_photo=on_photo)
        aligned = _image_batch([(p.aligned_crop.numpy() * 255).round().astype(np.uint8) for p in identity.photos])
        detections = _image_batch([draw_detections(image, faces, chosen) for image, faces, chosen in seen])
        return io.NodeOutput(identity, aligned, detections, ui=ui.PreviewImage(detections, cls=cls))
