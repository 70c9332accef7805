"""Stop the backend when the Blender that started it is gone (a crash or a kill
leaves no chance to shut it down), so no orphan keeps the GPU."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable


def pid_alive(pid: int) -> bool:
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(pid: int, on_gone: Callable[[], None], interval_s: float = 2.0) -> threading.Thread:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            if not pid_alive(pid):
                print(f"parent process {pid} is gone; shutting down", flush=True)
                on_gone()
                return

    t = threading.Thread(target=loop, name="parent-watch", daemon=True)
    t.start()
    return t
