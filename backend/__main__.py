"""Command line of the backend: ``python -m backend {serve,setup,selftest,lock,wheelhouse,download,make-tiny-model}``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .protocol import default_data_dir, default_model_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend", description="Wan-Animate backend")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for add_arguments in (_serve_args, _setup_args, _env_tool_args, _download_args, _tiny_model_args):
        add_arguments(sub)
    args = ap.parse_args(argv)
    return COMMANDS[args.cmd](args)


def _serve_args(sub: Any) -> None:
    s = sub.add_parser("serve", help="run the HTTP backend")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    s.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    s.add_argument("--data-dir", type=Path, default=None, help="jobs database, uploads and results")
    s.add_argument("--model-dir", type=Path, default=None, help="Wan2.2-Animate-14B-Diffusers folder")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--ready-file", type=Path, default=None, help="write host/port/token here once listening")
    s.add_argument("--parent-pid", type=int, default=None, help="shut down when this process exits")
    s.add_argument(
        "--tokens-file",
        type=Path,
        default=None,
        help="per-user tokens, one 'user token' per line, 'user token admin' for those who see every "
        "job and may stop the backend (instead of the single launch token); readable by its owner only",
    )
    s.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        help="a host name clients may use to reach this backend (repeatable); the bound address always may",
    )
    s.add_argument(
        "--allowed-root",
        type=Path,
        action="append",
        default=None,
        help="remote use: a folder jobs may read inputs from and write results to (repeatable)",
    )
    s.add_argument("--ssl-certfile", type=Path, default=None, help="serve HTTPS with this certificate (PEM)")
    s.add_argument("--ssl-keyfile", type=Path, default=None, help="the certificate's private key (PEM)")
    s.add_argument("--upload-quota-gb", type=float, default=None, help="space uploads may take (default 50)")
    s.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    s.add_argument(
        "--parallel-mode",
        choices=("ulysses", "ring"),
        default="ulysses",
        help="under torchrun with several GPUs: how attention shares the tokens",
    )
    s.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="cluster mode: run jobs on the Ray cluster at ADDRESS (host:port of `ray start --head`, "
        "or auto); keep Ray on a private network",
    )
    s.add_argument(
        "--ray-resource",
        default="GPU",
        help="cluster mode: the Ray resource one job holds (default GPU; a custom one labels nodes)",
    )
    s.add_argument(
        "--ray-gpus-per-job", type=float, default=1, help="cluster mode: how many of it one job holds"
    )


def _setup_args(sub: Any) -> None:
    st = sub.add_parser("setup", help="create or update the backend's Python environment")
    where = st.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--root",
        type=Path,
        help="keep environments side by side here: an update is self-tested before it is put in use",
    )
    where.add_argument("--venv", type=Path, help="install into this venv in place (developer set-up)")
    st.add_argument(
        "--rollback", action="store_true", help="with --root: go back to the previous environment"
    )
    st.add_argument(
        "--accel",
        choices=("auto", "cpu", "cuda", "none"),
        default="auto",
        help="which torch build (none: torch is already there, e.g. through --inherit)",
    )
    st.add_argument("--installer", choices=("auto", "uv", "pip"), default="auto")
    st.add_argument("--from", dest="source", type=Path, default=None, help="a wheelhouse: install offline")
    st.add_argument("--lock", type=Path, default=None, help="hashed requirements (default: backend's lock)")
    st.add_argument("--inherit", type=Path, default=None, help="a venv whose packages the new one also sees")
    st.add_argument("--extra", nargs="*", default=None, help="further packages to install (e.g. pytest)")


def _env_tool_args(sub: Any) -> None:
    sub.add_parser("selftest", help="check this environment: imports, a tiny model one step")
    sub.add_parser("lock", help="regenerate backend/requirements.lock from requirements.txt (needs uv)")
    w = sub.add_parser("wheelhouse", help="download every wheel set-up needs, for 'setup --from DIR'")
    w.add_argument("dir", type=Path)
    w.add_argument("--platform", choices=sorted(_platforms()), default=None, help="default: this machine")
    w.add_argument("--python-version", default="3.11")
    w.add_argument("--accel", choices=("cpu", "cuda", "none"), default="cpu", help="which torch build")
    w.add_argument("--lock", type=Path, default=None)


def _download_args(sub: Any) -> None:
    d = sub.add_parser("download", help="download the Wan-Animate weights")
    d.add_argument("--dir", type=Path, default=None)
    d.add_argument("--revision", default=None)
    d.add_argument(
        "--no-preprocessing",
        action="store_true",
        help="only the Diffusers weights, not the ViTPose/YOLO and relighting files",
    )
    d.add_argument(
        "--engine",
        choices=("wan-animate", "wan-animate-2", "wan-animate-2-distilled"),
        default="wan-animate",
        help="which model family; Animate-2 kinds go into the model folder's sub-folder of that name",
    )


def _tiny_model_args(sub: Any) -> None:
    t = sub.add_parser("make-tiny-model", help="write a tiny random pipeline for tests and demos")
    t.add_argument("dir", type=Path)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--sam2", action="store_true", help="also a tiny random SAM2 in DIR/sam2 (replace masks through SAM2)"
    )
    t.add_argument(
        "--engine",
        choices=("wan-animate", "wan-animate-2", "wan-animate-2-distilled"),
        default="wan-animate",
        help="which model family (Animate-2 kinds go into DIR/<engine>, as `download --engine` puts them)",
    )


def _selftest(_args: argparse.Namespace) -> int:
    from .env.selftest import main as selftest

    return selftest()


def _lock(_args: argparse.Namespace) -> int:
    from .env.lockfile import generate_lock

    print(generate_lock())
    return 0


def _wheelhouse(args: argparse.Namespace) -> int:
    from .env.lockfile import LOCK
    from .env.setup_env import make_wheelhouse

    make_wheelhouse(args.dir, args.lock or LOCK, args.platform, args.python_version, args.accel)
    return 0


def _download(args: argparse.Namespace) -> int:
    from .env.download import download_engine, download_weights

    try:
        if args.engine != "wan-animate":
            download_engine(args.dir or default_model_dir(), args.engine, revision=args.revision)
            return 0
        download_weights(
            args.dir or default_model_dir(),
            revision=args.revision,
            preprocessing=not args.no_preprocessing,
        )
    except Exception as exc:  # noqa: BLE001 - the hub, the network or the disk: the message says what to do
        print(
            f"download failed: {type(exc).__name__}: {exc}\nCheck the internet connection (a proxy is "
            "read from HTTPS_PROXY; a mirror of the model hub from HF_ENDPOINT). Run the download again "
            "to resume where it stopped.",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def _make_tiny_model(args: argparse.Namespace) -> int:
    from .env.tiny_model import make_tiny_animate2, make_tiny_model

    if args.engine != "wan-animate":
        print(make_tiny_animate2(args.dir, args.engine, args.seed))
    else:
        print(make_tiny_model(args.dir, args.seed, sam2=args.sam2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        import torch

        torch.set_num_threads(args.threads)
    from .model import sequence_parallel

    device, leader = args.device, None
    if sequence_parallel.world_size() > 1:
        # Under torchrun: rank 0 is the backend, the others only join the transformer's calls.
        rank_device = sequence_parallel.init_process_group()
        if sequence_parallel.rank() != 0:
            sequence_parallel.follow(rank_device)
            _leave()
        device, leader = str(rank_device), sequence_parallel.Leader(args.parallel_mode)
    from .service.http_api import serve

    serve(
        args.host,
        args.port,
        args.data_dir or default_data_dir(),
        args.model_dir or default_model_dir(),
        None,
        args.ready_file,
        device,
        args.parent_pid,
        leader,
        tokens_file=args.tokens_file,
        allowed_hosts=args.allowed_host,
        allowed_roots=args.allowed_root,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        upload_quota_gb=args.upload_quota_gb,
        ray_address=args.ray,
        ray_resource=args.ray_resource,
        ray_gpus_per_job=args.ray_gpus_per_job,
    )
    _leave()
    return 0


def _platforms() -> list[str]:
    from .env.lockfile import PLATFORMS

    return list(PLATFORMS)


def _setup(args: argparse.Namespace) -> int:
    from .env import setup_env
    from .env.lockfile import LOCK

    if args.rollback:
        if args.root is None:
            raise SystemExit("--rollback needs --root (the folder the environments are kept in)")
        setup_env.rollback(args.root)
        return 0
    opts = setup_env.Options(
        accel=args.accel,
        installer=args.installer,
        source=args.source,
        lock=args.lock or LOCK,
        extra=list(args.extra or []),
        inherit=args.inherit,
    )
    if args.root is not None:
        setup_env.update(args.root, opts)
    else:
        setup_env.create_env(
            args.venv,
            opts.accel,
            opts.extra,
            installer=opts.installer,
            source=opts.source,
            lock=opts.lock,
            inherit=opts.inherit,
        )
    return 0


def _leave() -> None:
    """End a backend that has shut down cleanly without the interpreter's teardown.

    By now every job is on disk and, under torchrun, every rank has met at the closing barrier.
    Native thread pools (TFLite's, onnxruntime's, gloo's) can still be joinable when C++ statics
    are destroyed, which aborts with "terminate called without an active exception" (seen under
    load in CI): a finished backend must not report a crash to torchrun or the add-on.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _serve,
    "setup": _setup,
    "selftest": _selftest,
    "lock": _lock,
    "wheelhouse": _wheelhouse,
    "download": _download,
    "make-tiny-model": _make_tiny_model,
}

if __name__ == "__main__":
    sys.exit(main())
