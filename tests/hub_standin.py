"""A local stand-in of the model hub for download tests: serves folders as model repositories
with the routes and headers huggingface_hub uses (HF_ENDPOINT points at it).

- GET /api/models/<repo>/revision/<rev>[?blobs=true]: the repo's commit and files (sizes, LFS sha256)
- GET /api/models/<repo>/tree/<rev>?recursive=true: the file list of that commit
- HEAD/GET /<repo>/resolve/<rev>/<path>: X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size; Range

Files are streamed at ``rate`` bytes/s so a test can stop a download in the middle of one, and
every file request is logged (method, path, Range) so it can see a download resume."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_FROM = 1024  # files this big are "LFS" files, with a sha256 in the metadata


@dataclass
class Repo:
    folder: Path
    commit: str
    files: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def of(cls, folder: Path) -> Repo:
        files = {}
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                data = p.read_bytes()
                files[p.relative_to(folder).as_posix()] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "oid": hashlib.sha1(data).hexdigest(),
                }
        commit = hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()
        return cls(folder, commit, files)

    def lfs(self, meta: dict) -> dict | None:
        if meta["size"] < LFS_FROM:
            return None
        return {"size": meta["size"], "sha256": meta["sha256"], "oid": meta["sha256"], "pointerSize": 134}


class HubStandIn:
    def __init__(self, repos: dict[str, Path], rate: int = 4 * 1024 * 1024) -> None:
        self.repos = {rid: Repo.of(folder) for rid, folder in repos.items()}
        self.rate = rate
        self.log: list[tuple[str, str, str | None]] = []  # (method, repo/path, Range header)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _split(self, rest: str) -> tuple[str, Repo, str] | None:
        for rid, repo in self.repos.items():
            if rest == rid or rest.startswith(rid + "/"):
                return rid, repo, rest[len(rid) + 1 :]
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _json(self, obj: object) -> None:
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _missing(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                self._file(head=True)

            def do_GET(self) -> None:
                path = unquote(urlsplit(self.path).path)
                if path.startswith("/api/models/"):
                    self._api(path[len("/api/models/") :])
                else:
                    self._file(head=False)

            def _api(self, rest: str) -> None:
                found = hub._split(rest)
                if found is None:
                    return self._missing()
                rid, repo, tail = found
                if tail == "" or tail.startswith("revision/"):
                    return self._json(
                        {
                            "id": rid,
                            "modelId": rid,
                            "sha": repo.commit,
                            "private": False,
                            "siblings": [
                                {"rfilename": n, "size": m["size"], "blobId": m["oid"], "lfs": repo.lfs(m)}
                                for n, m in repo.files.items()
                            ],
                        }
                    )
                if tail.startswith("tree/"):
                    return self._json(
                        [
                            {
                                "type": "file",
                                "path": n,
                                "size": m["size"],
                                "oid": m["oid"],
                                "lfs": repo.lfs(m),
                            }
                            for n, m in repo.files.items()
                        ]
                    )
                return self._missing()

            def _file(self, head: bool) -> None:
                found = hub._split(unquote(urlsplit(self.path).path).lstrip("/"))
                if found is None or not found[2].startswith("resolve/"):
                    return self._missing()
                rid, repo, tail = found
                name = tail.split("/", 2)[2]  # resolve/<revision>/<path>
                meta = repo.files.get(name)
                if meta is None:
                    return self._missing()
                rng = self.headers.get("Range")
                hub.log.append((self.command, f"{rid}/{name}", rng))
                data = (repo.folder / name).read_bytes()
                start = int(rng.split("=")[1].split("-")[0]) if rng and not head else 0
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.commit)
                etag = meta["sha256"] if repo.lfs(meta) else meta["oid"]
                self.send_header("ETag", f'"{etag}"')
                if repo.lfs(meta):
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(meta["size"]))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if head:
                    return
                chunk = 64 * 1024
                try:
                    for i in range(start, len(data), chunk):
                        self.wfile.write(data[i : i + chunk])
                        time.sleep(chunk / hub.rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped the download

        return Handler
