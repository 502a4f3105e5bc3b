"""Model setup from the command line: which files are in place, and fetching the missing ones.

    python multiid.py models check [--comfyui PATH] [--family NAME] [--verbose]
    python multiid.py models download [--comfyui PATH] [--family NAME] [--dry-run]

`check` prints, for each model family, a summary line (ready, or how many files are missing and about how
many GB they are), the missing or unusable files with the Hugging Face repository and file to get each
from, and the next command to run; `--verbose` lists every folder and file. A file counts as present only
when its header and size say it is what its name claims (file_kinds.py). Files are looked for in ComfyUI's
models folder and the folders extra_model_paths.yaml adds; the headless runner resolves them with this same
code. It exits with 1 when something is missing. `download` fetches only the missing files
with huggingface_hub (allow patterns into the snapshot folder the pack reads). Without internet access it
stops within seconds and says why; it never waits on a dead network.

Nothing here imports ComfyUI: the folders are worked out the way ComfyUI's folder_paths does it.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
import shutil
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from multiid_core.catalog import ModelFile, other_places
from multiid_core.families import FAMILY_FILES
from multiid_core.file_kinds import problem

from . import PACK_DIR

PROBE_TIMEOUT = 5.0
# ComfyUI's older folder names, still searched (folder_paths.map_legacy).
LEGACY_FOLDERS = {"diffusion_models": ("unet",), "text_encoders": ("clip",)}
TRUTHY = {"1", "on", "yes", "true"}


class SetupError(RuntimeError):
    """A setup problem the user can fix; the message says how."""


@dataclass
class ModelFolders:
    """ComfyUI's model folders: models/<kind> plus extra_model_paths.yaml entries, default-first."""

    models_dir: Path
    extra: list[tuple[str, Path, bool]] = field(default_factory=list)  # (kind, folder, is_default)
    configs: list[Path] = field(default_factory=list)

    def folders(self, kind: str) -> list[Path]:
        kinds = (kind, *LEGACY_FOLDERS.get(kind, ()))
        default = [path for k, path, is_default in self.extra if k in kinds and is_default]
        own = [self.models_dir / k for k in kinds]
        others = [path for k, path, is_default in self.extra if k in kinds and not is_default]
        seen: list[Path] = []
        for path in default + own + others:
            if path not in seen:
                seen.append(path)
        return seen


def _extra_sections(config: Path) -> list[tuple[str, Path | None, dict]]:
    """(name, base path resolved as ComfyUI does, the rest) of each section of an extra_model_paths.yaml."""
    try:
        import yaml
    except ImportError:
        raise SetupError(f"Cannot read {config}: PyYAML is not installed (pip install pyyaml).") from None
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise SetupError(f"Cannot read {config}: {err}") from None
    if not isinstance(data, dict):
        raise SetupError(f"Cannot read {config}: it is not a mapping of sections (see ComfyUI's example file).")
    sections = []
    for name, section in data.items():
        if not isinstance(section, dict):
            continue
        section = dict(section)
        base = section.pop("base_path", None)
        if base is not None:
            base = Path(os.path.expandvars(os.path.expanduser(str(base))))
            if not base.is_absolute():
                base = config.parent / base
        sections.append((str(name), base, section))
    return sections


def _check_base_paths(config: Path) -> None:
    """Refuses an extra_model_paths.yaml the user named whose base_path is not a folder: ComfyUI would skip its
    folders without a word, and the run would not find the files the user put there."""
    for name, base, _ in _extra_sections(config):
        if base is not None and not base.is_dir():
            raise SetupError(
                f"{config}: section '{name}' has base_path {base}, which is not a folder. Fix the path (a drive "
                "not mounted?) or remove the section."
            )


def read_extra_model_paths(config: Path) -> list[tuple[str, Path, bool]]:
    """The (kind, folder, is_default) entries of an extra_model_paths.yaml, resolved as ComfyUI resolves them."""
    entries = []
    for _, base, section in _extra_sections(config):
        is_default = bool(section.pop("is_default", False))
        for kind, value in section.items():
            for line in str(value).split("\n"):
                if not line:
                    continue
                folder = (base / line) if base is not None else Path(line)
                if not folder.is_absolute():
                    folder = config.parent / folder
                entries.append((kind, Path(os.path.normpath(folder)), is_default))
    return entries


def find_comfyui(explicit: str | None) -> Path | None:
    """--comfyui, COMFYUI_PATH, or the ComfyUI this pack is installed in (ComfyUI/custom_nodes/<pack>)."""
    for candidate in (explicit, os.environ.get("COMFYUI_PATH"), PACK_DIR.parent.parent):
        if candidate and (Path(candidate) / "main.py").is_file():
            return Path(candidate).resolve()
    if explicit:
        raise SetupError(f"{explicit} is not a ComfyUI folder (it has no main.py).")
    return None


def model_folders(comfyui: str | None, models_dir: str | None, extra_configs: Iterable[str]) -> ModelFolders:
    root = find_comfyui(comfyui)
    if models_dir:
        base = Path(models_dir).resolve()
    elif root is not None:
        base = root / "models"
    else:
        raise SetupError(
            "ComfyUI not found: run this from a pack installed in ComfyUI/custom_nodes, or pass --comfyui "
            "/path/to/ComfyUI (or --models-dir /path/to/models, or set COMFYUI_PATH)."
        )
    configs = [Path(c).resolve() for c in extra_configs]
    for config in configs:  # the user named these: a base_path that is no folder is a mistake to say
        _check_base_paths(config)
    if root is not None and (root / "extra_model_paths.yaml").is_file():
        configs.insert(0, root / "extra_model_paths.yaml")
    folders = ModelFolders(base, configs=configs)
    for config in configs:
        folders.extra += read_extra_model_paths(config)
    return folders


@dataclass(frozen=True)
class FileStatus:
    file: ModelFile
    found: Path | None  # where the pack finds it
    instead: bool  # found in another pack's usual place rather than the snapshot
    target: Path  # where `download` puts it
    problem: str | None = None  # why the file at `target` does not count (a placeholder, a cut download...)


def _alternatives(file: ModelFile, folders: ModelFolders) -> Path | None:
    for place, pattern in other_places(file):
        for folder in folders.folders(place.kind):
            found = folder.glob(pattern) if folder.is_dir() else []
            matches = sorted(p for p in found if p.is_file() and problem(p) is None)
            if matches:
                return matches[0]
    return None


def target_folder(file: ModelFile, folders: ModelFolders) -> Path:
    """Where a file goes: the folder that already holds its snapshot, else the first (default) folder."""
    top = file.path.split("/", 1)[0]
    candidates = folders.folders(file.folder)
    for folder in candidates:
        if (folder / top).exists():
            return folder
    return candidates[0]


def file_status(file: ModelFile, folders: ModelFolders) -> FileStatus:
    """Where the pack finds this file (the snapshot's place first, then other packs' places), or why not."""
    unusable: tuple[Path, str] | None = None
    for folder in folders.folders(file.folder):
        path = folder / file.path
        if path.exists():
            why = problem(path)
            if why is None:
                return FileStatus(file, path, False, path)
            unusable = unusable or (path, why)
    elsewhere = _alternatives(file, folders)
    if elsewhere is not None:
        return FileStatus(file, elsewhere, True, target_folder(file, folders) / file.path)
    if unusable is not None:
        return FileStatus(file, None, False, unusable[0], unusable[1])
    return FileStatus(file, None, False, target_folder(file, folders) / file.path)


def family_statuses(name: str, folders: ModelFolders) -> list[FileStatus]:
    return [file_status(f, folders) for f in FAMILY_FILES[name]]


def summary(name: str, statuses: list[FileStatus]) -> str:
    """One line: ready, or what is missing and about how much there is to download."""
    missing = [s for s in statuses if s.found is None]
    if not missing:
        return f"{name}: ready ({len(statuses)} files)"
    gigabytes = sum(s.file.size_gb for s in missing)
    size = f", about {gigabytes:.1f} GB to download" if gigabytes >= 0.05 else ""
    unusable = sum(1 for s in missing if s.problem)
    bad = f" ({unusable} of them present but unusable)" if unusable else ""
    return f"{name}: missing {len(missing)} of {len(statuses)} files{bad}{size}"


def family_names(requested: str | None) -> list[str]:
    names = list(FAMILY_FILES)
    if requested is None:
        return names
    for name in names:
        if name.lower() == requested.lower():
            return [name]
    raise SetupError(f"Unknown model family {requested!r}; choose one of {', '.join(names)}.")


def expected_folders(statuses: list[FileStatus]) -> list[Path]:
    """Every folder the family's files sit in (snapshot root and subfolders), for the check listing."""
    folders: set[Path] = set()
    for status in statuses:
        relative = Path(status.file.path)
        root = status.target
        for _ in relative.parts:
            root = root.parent
        for depth in range(1, len(relative.parts)):
            folders.add(root.joinpath(*relative.parts[:depth]))
    return sorted(folders)


def in_hub_layout(file: ModelFile) -> bool:
    """Whether the file sits in a copy of its repository's tree (a snapshot folder) rather than renamed."""
    return bool(file.repo_path) and file.path.endswith(file.repo_path)


def snapshot_dir(status: FileStatus) -> Path:
    """The folder that plays the repository's root for a file kept in its hub layout."""
    local = status.target
    for _ in Path(status.file.repo_path).parts:
        local = local.parent
    return local


def manual_commands(statuses: list[FileStatus]) -> list[str]:
    """Command lines that fetch these files by hand, one per repository and destination folder."""
    groups: dict[tuple[str, str, Path], list[str]] = {}
    lines = []
    for s in statuses:
        if s.file.host == "huggingface" and not in_hub_layout(s.file):  # stored under another name or folder
            staging = s.target.parent / ".download"
            lines.append(
                f"hf download {s.file.repo} {s.file.repo_path} --local-dir {staging} && "
                f"mv {staging / s.file.repo_path} {s.target} && rm -r {staging}"
            )
        else:
            local = snapshot_dir(s) if in_hub_layout(s.file) else s.target.parent
            groups.setdefault((s.file.host, s.file.repo, local), []).append(s.file.repo_path)
    for (host, repo, local), paths in groups.items():
        if host == "modelscope":  # entries without an extension are folders: fetch their contents
            includes = " ".join(f"'{p}/*'" if "." not in Path(p).name else p for p in paths)
            lines.append(f"modelscope download --model {repo} --include {includes} --local_dir {local}")
        else:
            lines.append(f"hf download {repo} {' '.join(paths)} --local-dir {local}")
    return lines


def check(folders: ModelFolders, names: list[str], out=sys.stdout, verbose: bool = False) -> bool:
    """Print a summary per family, the files to fetch, and the next command; True when nothing is missing."""
    print(f"ComfyUI models folder: {folders.models_dir}", file=out)
    for config in folders.configs:
        print(f"Also searched, from {config}:", file=out)
        for kind, path, is_default in folders.extra:
            print(f"  {kind}: {path}{' (default)' if is_default else ''}", file=out)
    incomplete = []
    for name in names:
        statuses = family_statuses(name, folders)
        repos = sorted({s.file.repo for s in statuses})
        print(f"\n{summary(name, statuses)}   [{', '.join(repos)}]", file=out)
        if verbose:
            print("  folders:", file=out)
            for folder in expected_folders([s for s in statuses if not s.instead]):
                print(f"    [{'ok' if folder.is_dir() else 'missing':<7}] {folder}/", file=out)
            print("  files:", file=out)
        for s in statuses:
            if s.found is not None and verbose:
                instead = f"  (used instead of {s.target})" if s.instead else ""
                print(f"    [ok     ] {s.found}{instead}", file=out)
            elif s.problem:
                print(f"    [bad    ] {s.target}: {s.problem}", file=out)
                print(f"              {s.file.purpose}: {s.file.url}", file=out)
            elif s.found is None:
                print(f"    [missing] {s.target}", file=out)
                print(f"              {s.file.purpose}: {s.file.url}", file=out)
        missing = [s for s in statuses if s.found is None]
        if missing:
            incomplete.append(name)
            for line in manual_commands(missing):
                print(f"  by hand: {line}", file=out)
    print(file=out)
    if incomplete:
        print(f"Ready: {len(names) - len(incomplete)} of {len(names)} families. Next, for the files above:", file=out)
        for name in incomplete:
            print(f"  python multiid.py models download --family {shlex.quote(name)}", file=out)
    else:
        print('Every family checked is ready. Next: python multiid.py video --photo me.jpg --prompt "..."', file=out)
    return not incomplete


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY


def probe(url: str, timeout: float) -> str | None:
    """None when the server answers within `timeout` seconds, else why not. Never blocks longer:
    name resolution ignores socket timeouts, so the request runs in a thread we stop waiting for."""
    outcome: dict[str, str | None] = {}

    def attempt() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                outcome["error"] = None
        except urllib.error.HTTPError as err:
            outcome["error"] = None if err.code < 500 else f"the server answered {err.code} {err.reason}"
        except Exception as err:  # noqa: BLE001 - any failure means: not reachable
            reason = getattr(err, "reason", err)
            timed_out = isinstance(reason, TimeoutError)
            outcome["error"] = f"no answer within {timeout:g} s" if timed_out else f"{type(reason).__name__}: {reason}"

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if worker.is_alive() or "error" not in outcome:
        return f"no answer within {timeout:g} s"
    return outcome["error"]


def _import_hub():
    try:
        import huggingface_hub
        import huggingface_hub.constants
    except ImportError:
        raise SetupError(
            "huggingface_hub is not installed (it comes with diffusers): pip install huggingface_hub"
        ) from None
    return huggingface_hub


@dataclass(frozen=True)
class Fetch:
    """One snapshot_download call: these files of `repo` into `local_dir` (as laid out on the hub)."""

    repo: str
    local_dir: Path
    files: tuple[str, ...]


@dataclass
class Plan:
    hub: list[FileStatus]  # missing files on Hugging Face
    manual: list[FileStatus]  # missing files elsewhere (ModelScope): printed as commands to run by hand

    @property
    def snapshots(self) -> list[Fetch]:
        """The files kept in their repository's layout, grouped into one snapshot_download each."""
        groups: dict[tuple[str, Path], list[str]] = {}
        for status in self.hub:
            if in_hub_layout(status.file):
                groups.setdefault((status.file.repo, snapshot_dir(status)), []).append(status.file.repo_path)
        return [Fetch(repo, local, tuple(files)) for (repo, local), files in groups.items()]

    @property
    def renamed(self) -> list[FileStatus]:
        """Files stored under another name or folder than in their repository (fetched one by one)."""
        return [status for status in self.hub if not in_hub_layout(status.file)]

    def __bool__(self) -> bool:
        return bool(self.hub or self.manual)


def plan(folders: ModelFolders, names: list[str]) -> Plan:
    """The missing files of these families (each once); files already found are skipped."""
    todo = Plan([], [])
    seen: set[Path] = set()
    for name in names:
        for status in family_statuses(name, folders):
            if status.found is None and status.target not in seen:
                seen.add(status.target)
                (todo.hub if status.file.host == "huggingface" else todo.manual).append(status)
    return todo


def download(folders: ModelFolders, names: list[str], dry_run: bool = False, timeout: float = PROBE_TIMEOUT,
             out=sys.stdout) -> bool:  # fmt: skip
    """Fetch what is missing from Hugging Face; False when some files must still be fetched by hand."""
    todo = plan(folders, names)
    if not todo:
        print("Every file is already in place; nothing to download.", file=out)
        return True
    for fetch in todo.snapshots:
        print(f"{fetch.repo} -> {fetch.local_dir}", file=out)
        for name in fetch.files:
            print(f"  {name}", file=out)
    for status in todo.renamed:
        print(f"{status.file.repo} -> {status.target.parent}", file=out)
        print(f"  {status.file.repo_path} (saved as {status.target.name})", file=out)
    if todo.manual:
        print("Not on Hugging Face; fetch by hand:", file=out)
        for line in manual_commands(todo.manual):
            print(f"  {line}", file=out)
    if dry_run or not todo.hub:
        return not todo.manual
    if hub_offline():
        raise SetupError(
            "HF_HUB_OFFLINE is set, so nothing can be downloaded. Unset it (or run on a machine with internet "
            "access and copy the files to the paths above)."
        )
    hub = _import_hub()
    endpoint = hub.constants.ENDPOINT.rstrip("/")  # HF_ENDPOINT, as the download itself will use
    problem = probe(f"{endpoint}/api/models/{todo.hub[0].file.repo}", timeout)
    if problem:
        lines = "\n".join(f"  {line}" for line in manual_commands(todo.hub))
        raise SetupError(
            f"Cannot reach {endpoint} ({problem}). This machine seems to have no internet access (or needs a "
            f"proxy: set HTTPS_PROXY). Download the files on a machine that has it and copy them to the paths "
            f"above, e.g. with:\n{lines}"
        )
    for fetch in todo.snapshots:
        fetch.local_dir.mkdir(parents=True, exist_ok=True)
        hub.snapshot_download(fetch.repo, allow_patterns=list(fetch.files), local_dir=fetch.local_dir)
        missing = [name for name in fetch.files if not (fetch.local_dir / name).is_file()]
        if missing:
            raise SetupError(f"{fetch.repo} has no {', '.join(missing)}: the repository layout changed.")
        _drop_hub_metadata(fetch.local_dir)
    for status in todo.renamed:
        staging = status.target.parent / ".multiid-download"
        fetched = hub.hf_hub_download(status.file.repo, status.file.repo_path, local_dir=staging)
        Path(fetched).replace(status.target)
        shutil.rmtree(staging)
    print("Done." if not todo.manual else "Done with Hugging Face; fetch the files above by hand.", file=out)
    return not todo.manual


def _drop_hub_metadata(local_dir: Path) -> None:
    """huggingface_hub keeps a .cache/huggingface folder in local_dir; ComfyUI's file lists do not need it."""
    cache = local_dir / ".cache" / "huggingface"
    if cache.is_dir() and not any(fnmatch.fnmatch(p.name, "*.incomplete") for p in cache.rglob("*")):
        shutil.rmtree(cache)
        if not any((local_dir / ".cache").iterdir()):
            (local_dir / ".cache").rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python multiid.py models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("check", "list every expected file and folder, and whether it is there (exit 1 if anything is missing)"),
        ("download", "fetch the missing files from Hugging Face"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--comfyui", help="ComfyUI folder (default: the one this pack is installed in)")
        sub.add_argument("--models-dir", help="models folder, when ComfyUI runs with --base-directory")
        sub.add_argument(
            "--extra-model-paths", action="append", default=[], metavar="YAML",
            help="another extra_model_paths.yaml (ComfyUI's own is read anyway)",
        )  # fmt: skip
        sub.add_argument("--family", help=f"only this model family ({', '.join(FAMILY_FILES)})")
        if name == "check":
            sub.add_argument("--verbose", action="store_true", help="list every folder and file, found or not")
        if name == "download":
            sub.add_argument("--dry-run", action="store_true", help="print what would be fetched, fetch nothing")
            sub.add_argument("--timeout", type=float, default=PROBE_TIMEOUT, help="seconds to wait for the hub")
    args = parser.parse_args(argv)
    try:
        folders = model_folders(args.comfyui, args.models_dir, args.extra_model_paths)
        names = family_names(args.family)
        if args.command == "check":
            return 0 if check(folders, names, verbose=args.verbose) else 1
        return 0 if download(folders, names, dry_run=args.dry_run, timeout=args.timeout) else 1
    except SetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
