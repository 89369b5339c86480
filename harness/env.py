"""Environment fingerprint stamped on every result row (DESIGN §4, last bullet).

:func:`fingerprint` returns a flat, JSON-serialisable dict describing the
machine and software a number was measured with. The static part (CPU, GPU,
library versions, git commit) is computed once per process and cached
(``functools.cache``, an unbounded ``lru_cache``) because the fingerprint is
attached to every result row; the per-call part (time, thread counts, the
requested device, backend and precision, Jetson state) is read on every call.

Values that cannot be determined are ``None``, never guessed.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import importlib
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil
import torch

__all__ = ["fingerprint", "git_commit", "jetson_info"]

_SOURCE_ROOT = Path(__file__).resolve().parent.parent
"""Root of the evbench source tree (the directory holding ``harness/``)."""

TEGRA_RELEASE = Path("/etc/nv_tegra_release")


# --------------------------------------------------------------------------- pieces


def _cpu_model() -> str | None:
    """CPU model: ``model name`` of /proc/cpuinfo, else a platform fallback."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _module_version(name: str) -> str | None:
    """``module.__version__`` (or its distribution version); None if not importable."""
    try:
        mod = importlib.import_module(name)
    except Exception:  # ImportError, or a broken install raising anything else
        return None
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None
    return str(version)


def _dist_version(dist: str) -> str | None:
    """Installed distribution version (no import); None if not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 10.0) -> str | None:
    """stdout of ``cmd`` stripped, or None on any failure / non-zero exit."""
    try:
        res = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout.strip()


def _gpu_driver() -> str | None:
    """NVIDIA driver version via pynvml, else ``nvidia-smi``, else None."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # not installed, no NVML library, no driver
        pass
    if shutil.which("nvidia-smi"):
        out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        if out:
            return out.splitlines()[0].strip()
    return None


@functools.cache
def git_commit(root: str | None = None) -> str | None:
    """Commit of the evbench source tree, ``"<sha>-dirty"`` with uncommitted changes.

    Tracked files only decide "dirty" (untracked files do not). Cached per
    process.

    Args:
        root: Directory to inspect; default the evbench source root (the parent
            of ``harness/``).

    Returns:
        The 40-hex commit (plus ``-dirty``), or None when ``root`` is not the
        top of a git checkout (e.g. an installed wheel inside another
        project's repository), has no commit yet, or ``git`` is missing.
    """
    path = Path(root) if root is not None else _SOURCE_ROOT
    if shutil.which("git") is None:
        return None
    top = _run(["git", "rev-parse", "--show-toplevel"], cwd=path)
    if top is None or Path(top).resolve() != path.resolve():
        return None
    sha = _run(["git", "rev-parse", "--verify", "HEAD"], cwd=path)
    if not sha:
        return None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path)
    return f"{sha}-dirty" if status else sha


def jetson_info(
    release_path: str | os.PathLike[str] = TEGRA_RELEASE, *, root: str | os.PathLike[str] = "/"
) -> dict[str, Any] | None:
    """NVIDIA Jetson state, or None when not on a Jetson.

    Delegates to :func:`evbench.harness.devices.jetson.jetson_info` (standard library
    only, shared with the device agent): board model
    (``/proc/device-tree/model``), L4T release (``/etc/nv_tegra_release``),
    power mode (``nvpmodel -q``, run only when on PATH), clocks
    (``jetson_clocks --show`` when it runs, i.e. as root; cpufreq/devfreq sysfs
    otherwise), whether ``jetson_clocks`` pinned them, GPU and EMC clocks in
    MHz, and the INA3221 rail names (jetson-stats when importable, sysfs
    otherwise).

    Args:
        release_path: The L4T release file; when it does not exist this is not a
            Jetson (tests point it elsewhere).
        root: Filesystem root for the model, sysfs and rails (tests use a fake tree).

    Returns:
        None if ``release_path`` does not exist, else a JSON-serialisable dict
        with at least ``l4t`` (first line of the release file), ``l4t_release``
        (e.g. ``"R32.7.1"``), ``model`` (None when unreadable), ``power_mode``
        (e.g. ``"MAXN"``, None when ``nvpmodel`` is absent), ``power_mode_id``,
        ``jetson_clocks`` (True when clocks are pinned, None when unknown),
        ``clocks`` (parsed clock dict or None), ``gpu_mhz`` / ``emc_mhz``
        (``{"min_mhz", "max_mhz", "cur_mhz"}`` or None), ``rails`` (rail
        names) and ``total_rail`` (``"VDD_IN"``/``"POM_5V_IN"``/None).
    """
    from evbench.harness.devices import jetson

    path = Path(release_path)
    if not path.exists():
        return None
    return jetson.jetson_info(root=os.fspath(root), release_path=os.fspath(path))


@functools.cache
def _gpu_info(index: int) -> dict[str, Any]:
    """GPU name/memory/driver and CUDA/cuDNN versions for CUDA device ``index``."""
    info: dict[str, Any] = {
        "gpu_name": None,
        "gpu_count": 0,
        "gpu_memory_gb": None,
        "gpu_driver": None,
        "cuda_version": torch.version.cuda,
        "cudnn_version": None,
    }
    if not torch.cuda.is_available():
        return info
    count = torch.cuda.device_count()
    idx = index if 0 <= index < count else 0
    props = torch.cuda.get_device_properties(idx)
    info.update(
        gpu_name=torch.cuda.get_device_name(idx),
        gpu_count=count,
        gpu_memory_gb=round(props.total_memory / 2**30, 2),
        gpu_driver=_gpu_driver(),
        cudnn_version=torch.backends.cudnn.version(),
    )
    return info


@functools.cache
def _static_info() -> dict[str, Any]:
    """Everything that does not change during a process (cached)."""
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    ort_providers: list[str] | None
    try:
        import onnxruntime  # type: ignore[import-not-found]

        ort_providers = list(onnxruntime.get_available_providers())
    except Exception:
        ort_providers = None
    return {
        "cpu_model": _cpu_model(),
        "cpu_arch": platform.machine() or None,
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_available": affinity,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "torch": torch.__version__,
        "torchvision": _module_version("torchvision"),
        "numpy": _module_version("numpy"),
        "onnxruntime": _module_version("onnxruntime"),
        "onnxruntime_providers": ort_providers,
        "av": _module_version("av"),
        "fvcore": _dist_version("fvcore"),
        "ptflops": _dist_version("ptflops"),
        "git_commit": git_commit(),
    }


# --------------------------------------------------------------------------- public


def fingerprint(
    *, device: str = "cpu", backend: str = "torch", precision: str = "fp32"
) -> dict[str, Any]:
    """Environment fingerprint for one result row.

    Args:
        device: Device the row was measured on (``"cpu"``, ``"cuda:0"``, ...).
        backend: Execution backend (``"torch"``, ``"onnxruntime-cpu"``, ...).
        precision: Numeric precision (``"fp32"``, ``"fp16"``, ``"int8"``, ...).

    Returns:
        A flat JSON-serialisable dict (a fresh copy; mutating it does not touch
        the cache) with keys:

        * ``cpu_model``, ``cpu_arch``, ``cpu_cores_logical``,
          ``cpu_cores_physical`` (psutil; may be None), ``cpu_cores_available``
          (scheduler affinity), ``memory_gb`` (total RAM, GiB)
        * ``os``, ``kernel``, ``python``, ``hostname``
        * ``gpu_name``, ``gpu_count``, ``gpu_memory_gb`` (GiB),
          ``gpu_driver`` (pynvml, else nvidia-smi, else None),
          ``cuda_version`` (``torch.version.cuda``: the CUDA torch was built
          with, None for CPU builds), ``cudnn_version`` — GPU fields are None
          unless ``torch.cuda.is_available()``; they describe ``device``'s
          index when it is a CUDA device, GPU 0 otherwise
        * ``torch``, ``torchvision``, ``numpy``, ``onnxruntime``,
          ``onnxruntime_providers``, ``av``, ``fvcore``, ``ptflops`` versions
          (None when not importable/installed)
        * ``backend``, ``precision``, ``device``, ``threads``
          (``torch.get_num_threads()``), ``interop_threads``
          (``torch.get_num_interop_threads()``)
        * ``jetson``: None, or :func:`jetson_info`'s dict on a Jetson
        * ``git_commit``: see :func:`git_commit`
        * ``time``: UTC ISO-8601 with milliseconds, e.g.
          ``"2025-01-31T12:00:00.000+00:00"``

    Raises:
        RuntimeError: ``device`` is not a valid torch device string.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RuntimeError(f"invalid device {device!r}: {exc}") from exc
    out = copy.deepcopy(_static_info())
    out.update(_gpu_info(dev.index if dev.type == "cuda" and dev.index is not None else 0))
    out.update(
        backend=backend,
        precision=precision,
        device=str(device),
        threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        jetson=jetson_info(),
        time=_dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
    )
    return out
