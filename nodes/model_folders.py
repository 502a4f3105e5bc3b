"""Where the pack's files live in a ComfyUI install, honouring extra_model_paths.yaml.

Model combos list what is found, plus the canonical location from the catalog, so a workflow loads even
before files are downloaded and the node then says exactly which file to put where.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..multiid_core.catalog import ANTELOPEV2_RECOGNIZER, EVA_CLIP, FACE_PARSER, ModelFile, other_places
from ..multiid_core.errors import MultiIDError

FOLDERS = {
    "multiid": {".safetensors", ".pt", ".pth", ".bin", ".onnx", ".json"},
    "insightface": {".onnx"},
    "facexlib": {".pth", ".safetensors"},
}


def register_model_folders() -> None:
    """Adds models/multiid, models/insightface and models/facexlib unless the user already set them."""
    for name, extensions in FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, name)
        if name in folder_paths.folder_names_and_paths:
            paths, existing = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            folder_paths.folder_names_and_paths[name] = (paths, set(existing) | extensions)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], extensions)


def roots(kind: str) -> list[Path]:
    """The existing folders of one model folder kind (models/<kind> plus extra_model_paths.yaml entries)."""
    return [Path(p) for p in folder_paths.get_folder_paths(kind) if os.path.isdir(p)]


def searched(kind: str) -> str:
    """For error messages: the folders that were searched (or where the default one would be)."""
    return ", ".join(str(r) for r in roots(kind)) or os.path.join(folder_paths.models_dir, kind)


def snapshots() -> list[Path]:
    """Every folder in models/multiid (and its extra_model_paths.yaml folders), by name, the first found of a
    name winning as in ComfyUI's own lists: the one scan of downloaded snapshots that every loader uses."""
    found: dict[str, Path] = {}
    for root in roots("multiid"):
        for snapshot in sorted(p for p in root.iterdir() if p.is_dir()):
            found.setdefault(snapshot.name, snapshot)
    return list(found.values())


def _snapshot_candidates(relative: str) -> dict[str, Path]:
    """`<snapshot>/<relative>` in every snapshot, e.g. ConsisID-preview/face_encoder/..."""
    return {f"{s.name}/{relative}": s / relative for s in snapshots() if (s / relative).exists()}


def _choices(found: dict[str, Path], canonical: str) -> list[str]:
    return list(found) + ([canonical] if canonical not in found else [])


def _in_other_places(entry: ModelFile) -> dict[str, Path]:
    """The entry where other packs keep it (models.OTHER_PLACES), labelled `<folder kind>/<path there>`;
    other snapshots are `_snapshot_candidates`' part."""
    found: dict[str, Path] = {}
    for place, pattern in other_places(entry):
        if place.kind == "multiid":
            continue
        for root in roots(place.kind):
            for match in sorted(root.glob(pattern)):
                offered = root / place.offered if place.offered else match
                found.setdefault(f"{place.kind}/{offered.relative_to(root).as_posix()}", offered)
    return found


def antelopev2_choices() -> dict[str, Path]:
    return {**_snapshot_candidates("face_encoder/models/antelopev2"), **_in_other_places(ANTELOPEV2_RECOGNIZER)}


def eva_choices() -> dict[str, Path]:
    return {**_snapshot_candidates(EVA_CLIP.repo_path), **_in_other_places(EVA_CLIP)}


def parser_choices() -> dict[str, Path]:
    return {**_snapshot_candidates(FACE_PARSER.repo_path), **_in_other_places(FACE_PARSER)}


def choice_list(kind: str) -> list[str]:
    found, entry = _CHOICES[kind]
    return _choices(found(), _canonical(entry, kind))


def resolve(kind: str, label: str) -> Path:
    """The path behind a combo value, or an error naming the exact expected path and its download."""
    found, entry = _CHOICES[kind]
    candidates = found()
    if label in candidates:
        return candidates[label]
    folders = searched("multiid")
    raise MultiIDError(
        f"The {entry.purpose} files were not found at '{label}'. Expected {entry.where} "
        f"(model folders searched: {folders}). Download {entry.url} (or the whole {entry.repo} snapshot) "
        f"and put it there, then refresh the node (press R in the editor)."
    )


def _canonical(entry: ModelFile, kind: str) -> str:
    return str(Path(entry.path).parent) if kind == "antelopev2" else entry.path


_CHOICES = {
    "antelopev2": (antelopev2_choices, ANTELOPEV2_RECOGNIZER),
    "eva_clip": (eva_choices, EVA_CLIP),
    "face_parser": (parser_choices, FACE_PARSER),
}


FROM_MODEL_FOLDER = "from model folder"


def video_model_choices() -> dict[str, Path]:
    """Snapshot folders (models/multiid/<name>/transformer/), SAT checkpoint folders (Concat-ID's
    models/multiid/<name>/<checkpoint>/latest) and single transformer files."""
    found = {}
    for snapshot in snapshots():
        if (snapshot / "transformer").is_dir():
            found[snapshot.name] = snapshot
        for checkpoint in sorted(p for p in snapshot.iterdir() if (p / "latest").is_file()):
            found[f"{snapshot.name}/{checkpoint.name}"] = checkpoint
    for name in folder_paths.get_filename_list("diffusion_models"):
        if name.endswith(".safetensors"):
            found.setdefault(f"diffusion_models/{name}", Path(folder_paths.get_full_path("diffusion_models", name)))
    return found


def vae_choices() -> list[str]:
    return [FROM_MODEL_FOLDER] + [n for n in folder_paths.get_filename_list("vae") if n.endswith(".safetensors")]


def resolve_video_model(label: str, canonical: ModelFile) -> Path:
    found = video_model_choices()
    if label in found:
        return found[label]
    raise MultiIDError(
        f"The model '{label}' was not found. Expected a snapshot folder {canonical.where} (with transformer/, vae/ "
        f"and scheduler/ inside) or a .safetensors file in models/diffusion_models. Download {canonical.url} "
        f"(e.g. `huggingface-cli download {canonical.repo} --local-dir ComfyUI/models/{canonical.folder}/"
        f"{canonical.path}`), then refresh the node (press R in the editor)."
    )


def folder_path(kind: str, name: str) -> Path:
    """A file picked from one of ComfyUI's own model folders."""
    full = folder_paths.get_full_path(kind, name)
    if full is None:
        raise MultiIDError(f"'{name}' is not in ComfyUI's models/{kind} folder any more; pick another file.")
    return Path(full)
