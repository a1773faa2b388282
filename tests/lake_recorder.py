"""Every file-system operation a process tree makes under one folder, recorded with strace.

The steps' Spark reads and writes happen in the JVM (Hadoop's FileSystem, the Parquet and CSV
sources, the output committer) and their small files in the Python driver through py4j, so the
recording is taken where all of them meet: the system calls of the whole process tree
(``strace -ff``, every thread and child). Each call on a path under the folder becomes one
``LakeOperation`` of the kind an object store sees it as (``rental_kpis.aws.emrfs``
maps those kinds to the S3 requests EMRFS makes).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from rental_kpis.aws.emrfs import LakeOperation

# The calls recorded: every call that takes a path, and the directory reads (by descriptor).
STRACE_FILTER = "trace=%file,getdents64"
_LINE = re.compile(r"^(?P<call>\w+)\((?P<args>.*)\) = (?P<result>-?\d+|\?)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FD_PATH = re.compile(r"^\d+<([^>]*)>")

STAT_CALLS = {"stat", "lstat", "newfstatat", "fstatat64", "statx", "access", "faccessat"}
STAT_CALLS |= {"faccessat2"}
OPEN_CALLS = {"open", "openat", "creat"}
MKDIR_CALLS = {"mkdir", "mkdirat"}
DELETE_CALLS = {"unlink", "unlinkat", "rmdir"}
RENAME_CALLS = {"rename", "renameat", "renameat2"}
# Local-file details with no object-store counterpart: permission bits, extended attributes
# (POSIX ACLs), symbolic links (Java's canonical paths), times. S3 objects have none.
LOCAL_ONLY = {"chmod", "fchmodat", "chown", "fchownat", "lchown", "getxattr", "lgetxattr"}
LOCAL_ONLY |= {"listxattr", "llistxattr", "readlink", "readlinkat", "utimensat", "utime"}
LOCAL_ONLY |= {"execve", "chdir", "statfs", "truncate"}


def strace_missing() -> str | None:
    """Why no recording can be made here (no strace, or tracing not permitted), else None."""
    if shutil.which("strace") is None:
        return "strace is not installed (`make tracer` installs it)"
    probe = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=none", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"strace cannot trace here: {probe.stderr.strip().splitlines()[-1:]}"
    return None


def traced_command(command: list[str], trace_dir: Path) -> list[str]:
    """``command`` under strace, one trace file per process and thread in ``trace_dir``."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    # -ff: a file per thread, so no call is split in two lines; -y: a descriptor's path;
    # --seccomp-bpf: only the filtered calls stop the tracee (the JVM makes millions of others).
    options = ["-ff", "-qq", "-y", "--seccomp-bpf", "-e", STRACE_FILTER]
    return ["strace", *options, "-o", str(trace_dir / "call"), *command]


def _key(path: str, root: str) -> str | None:
    if path == root:
        return ""
    return path[len(root) + 1 :] if path.startswith(root + "/") else None


def _operations(call: str, args: str, outcome: str, root: str) -> list[LakeOperation]:
    paths = [bytes(p, "utf-8").decode("unicode_escape") for p in _QUOTED.findall(args)]
    if call == "getdents64":
        fd = _FD_PATH.match(args)
        key = _key(fd.group(1), root) if fd else None
        return [] if key is None else [LakeOperation("list", key)]
    keys = [_key(p, root) for p in paths]
    if all(k is None for k in keys):
        return []
    if call in LOCAL_ONLY:
        return []
    if call in RENAME_CALLS:
        source, target = (k for k in keys if k is not None)
        return [LakeOperation("rename", source, target)]
    key = next(k for k in keys if k is not None)
    if call in STAT_CALLS:
        return [LakeOperation("stat", key)]
    if call in OPEN_CALLS:
        if "O_DIRECTORY" in args:
            return [LakeOperation("list", key)]
        writes = any(flag in args for flag in ("O_WRONLY", "O_RDWR", "O_CREAT"))
        return [LakeOperation("write" if writes else "read", key)]
    if call in MKDIR_CALLS:  # an existing folder is only looked at
        return [LakeOperation("stat" if "EEXIST" in outcome else "mkdir", key)]
    if call in DELETE_CALLS:
        return [LakeOperation("delete", key)]
    raise ValueError(f"a system call on the lake this recorder does not know: {call}({args})")


def read_operations(trace_dir: Path, root: Path) -> set[LakeOperation]:
    """The operations on paths under ``root`` that the trace files in ``trace_dir`` hold."""
    folder = str(root.resolve())
    found: set[LakeOperation] = set()
    for trace in sorted(trace_dir.iterdir()):
        for line in trace.read_text(errors="replace").splitlines():
            match = _LINE.match(line)
            if match is None or folder not in line:
                continue
            call, args, result = match.group("call", "args", "result")
            tail = line[match.end() :]
            found.update(_operations(call, args, result + tail, folder))
    return found
