"""A Hugging Face hub stand-in on loopback: just the routes huggingface_hub's snapshot_download uses.

Serves one or more repositories from {repo: {path: bytes}} and records every file it sent, so a test can
check that a download fetched exactly the files it should and laid them out as on the hub.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, bytes]]):
        self.repos = repos
        self.sent: list[tuple[str, str]] = []  # (repo, path) of every file body served
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                for repo, files in hub.repos.items():
                    if path in (f"/api/models/{repo}", f"/api/models/{repo}/revision/main"):
                        siblings = [{"rfilename": name} for name in files]
                        return self.send(json.dumps({"id": repo, "sha": SHA, "siblings": siblings}).encode(), body)
                    if path.startswith(f"/api/models/{repo}/tree/"):
                        tree = [
                            {"type": "file", "path": name, "size": len(data), "oid": hub.oid(data)}
                            for name, data in files.items()
                        ]
                        return self.send(json.dumps(tree).encode(), body)
                    for prefix in (f"/{repo}/resolve/{SHA}/", f"/{repo}/resolve/main/"):
                        if path.startswith(prefix) and path[len(prefix) :] in files:
                            name = path[len(prefix) :]
                            if body:
                                hub.sent.append((repo, name))
                            data = files[name]
                            return self.send(data, body, {"X-Repo-Commit": SHA, "ETag": f'"{hub.oid(data)}"'})
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def send(self, data: bytes, body: bool, headers: dict[str, str] | None = None) -> None:
                self.send_response(200)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def oid(data: bytes) -> str:
        return hashlib.sha1(data).hexdigest()

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def model_file_bytes(name: str, tag: str = "") -> bytes:
    """The smallest complete file of the kind a name's suffix says (what `models check` accepts as that kind);
    `tag` makes files of one kind differ."""
    suffix = name.rsplit(".", 1)[-1] if "." in name.rsplit("/", 1)[-1] else ""
    if suffix == "safetensors":
        header = json.dumps({"__metadata__": {"tag": tag}}).encode()
        return len(header).to_bytes(8, "little") + header
    if suffix == "json":
        return json.dumps({"tag": tag}).encode()
    if suffix in ("pt", "pth", "bin"):
        return b"\x80\x02}q\x00." + tag.encode()  # a pickled empty dict
    if suffix in ("onnx", "model"):
        return b"\x08\x07" + tag.encode().ljust(62, b"\x00")
    return tag.encode() or b"x"
