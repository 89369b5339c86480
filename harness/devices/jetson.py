# ruff: noqa: UP004, UP006, UP007, UP021, UP022, UP024, UP031, UP032, UP035, UP045, B905
# (pyupgrade rules and B905 are off on purpose: this file must stay valid Python 3.6 — JetPack 4.x on the
# Jetson Nano ships Python 3.6 — so it uses typing.Optional/Dict/List, not ``X | None``.)
"""NVIDIA Jetson boards: detection, power mode, clocks, tegrastats and INA3221 power rails.

Standard library only and Python 3.6 syntax: the minimal device agent
(:mod:`evbench.harness.agent`) copies this file next to itself onto the board.

Sources read (every function takes a ``root`` so tests point it at a fake tree):

* ``/proc/device-tree/model`` — board model, e.g. ``"NVIDIA Jetson Nano Developer Kit"``.
* ``/etc/nv_tegra_release`` — L4T release, e.g. ``"# R32 (release), REVISION: 7.1, ..."``.
* ``nvpmodel -q`` — power mode name and id (``"NV Power Mode: MAXN\\n0"``).
* ``jetson_clocks --show`` — CPU/GPU/EMC min/max/current frequencies (needs root).
* ``tegrastats`` lines — RAM, CPU load@MHz, GR3D_FREQ, EMC_FREQ, temperatures, rails.
* INA3221 power monitors in sysfs, two layouts:

  - Nano / TX1 (L4T R32, ``ina3221x`` IIO driver):
    ``/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/rail_name_N`` with
    ``in_power_N_input`` (mW), ``in_current_N_input`` (mA), ``in_voltage_N_input`` (mV).
    Files are named ``in_power0_input`` etc. (no underscore before N).
  - Orin / JetPack 5+ (upstream ``ina3221`` hwmon driver):
    ``/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmonK/inN_label`` with
    ``inN_input`` (bus voltage, mV) and ``currN_input`` (mA); power = V x I.

  The total-board input rail is ``POM_5V_IN`` (Nano) or ``VDD_IN`` (Orin
  Nano/NX, Xavier NX, TX2). Boards without one (AGX Orin) fall back to the sum
  of the module rails, and say so.

jetson-stats (``from jtop import jtop``) is used for the rails snapshot when it
is importable; sysfs otherwise. ``nvpmodel`` and ``jetson_clocks`` are run
only when found on ``PATH``, each with a timeout.
"""

import glob
import os
import re
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "TOTAL_RAIL_NAMES",
    "RailSampler",
    "detect",
    "find_rails",
    "integrate_trapezoid_j",
    "is_jetson",
    "jetson_info",
    "parse_jetson_clocks",
    "parse_l4t_release",
    "parse_nvpmodel",
    "parse_tegrastats",
    "read_clocks_sysfs",
    "read_model",
    "read_power_mode",
    "read_rails",
    "read_rails_jtop",
    "read_rails_sysfs",
    "total_rail_reader",
]

MODEL_FILE = "proc/device-tree/model"
RELEASE_FILE = "etc/nv_tegra_release"
NANO_IIO_GLOB = "sys/bus/i2c/drivers/ina3221x/*/iio:device*"
HWMON_GLOB = "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"

#: Total-board input rails, in order of preference (Orin/NX/TX2 name, then Nano name).
TOTAL_RAIL_NAMES = ("VDD_IN", "POM_5V_IN")

#: Timeout of ``nvpmodel`` / ``jetson_clocks`` calls, seconds.
COMMAND_TIMEOUT_S = 5.0

Runner = Callable[[Sequence[str]], Optional[str]]
"""Runs a command line, returns its stdout or None (tests inject a fake)."""


# --------------------------------------------------------------------------- small helpers


def _join(root: str, rel: str) -> str:
    return os.path.join(root, rel)


def _read_text(path: str) -> Optional[str]:
    """File content stripped of NULs and whitespace; None when unreadable or empty."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except (OSError, IOError):
        return None
    text = data.replace(b"\x00", b"").decode("utf-8", "replace").strip()
    return text or None


def _read_number(path: str) -> Optional[float]:
    """A sysfs number (one integer or float); None when unreadable or not a number."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def _run_command(argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S) -> Optional[str]:
    """stdout of ``argv`` when the tool is on PATH and exits 0 within ``timeout_s``; else None.

    Python 3.6 compatible (no ``capture_output``/``text``).
    """
    if shutil.which(argv[0]) is None:
        return None
    try:
        res = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout


# --------------------------------------------------------------------------- detection


def read_model(root: str = "/") -> Optional[str]:
    """Board model from ``<root>/proc/device-tree/model`` (NUL terminator removed).

    Returns:
        E.g. ``"NVIDIA Jetson Nano Developer Kit"``, or None when unreadable.
    """
    return _read_text(_join(root, MODEL_FILE))


def parse_l4t_release(text: str) -> Dict[str, Any]:
    """Parse the first line of ``/etc/nv_tegra_release``.

    Args:
        text: File content, e.g. ``"# R32 (release), REVISION: 7.1, GCID: 29818004,
            BOARD: t210ref, EABI: aarch64, DATE: ..."``.

    Returns:
        ``{"raw": first line, "release": "R32.7.1" or None, "major": 32 or None,
        "revision": "7.1" or None, "board": "t210ref" or None}``.
    """
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    out = {"raw": first or None, "release": None, "major": None, "revision": None, "board": None}  # type: Dict[str, Any]
    m = re.search(r"R(\d+)\s*\(release\)", first)
    if m:
        out["major"] = int(m.group(1))
    m = re.search(r"REVISION:\s*([0-9.]+)", first)
    if m:
        out["revision"] = m.group(1).rstrip(".")
    if out["major"] is not None:
        out["release"] = "R{}".format(out["major"]) + (
            ".{}".format(out["revision"]) if out["revision"] else ""
        )
    m = re.search(r"BOARD:\s*([^,\s]+)", first)
    if m:
        out["board"] = m.group(1)
    return out


def is_jetson(root: str = "/", release_path: Optional[str] = None) -> bool:
    """Whether ``root`` is a Jetson: the L4T release file exists, or the model names a Jetson.

    Args:
        root: Filesystem root to inspect.
        release_path: Override of the L4T release file (default ``<root>/etc/nv_tegra_release``).
    """
    release = release_path if release_path is not None else _join(root, RELEASE_FILE)
    if os.path.exists(release):
        return True
    model = read_model(root) or ""
    return "jetson" in model.lower()


def detect(root: str = "/", release_path: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """Board identity without running anything: model and L4T release.

    Returns:
        None off a Jetson, else ``{"model", "l4t" (raw first line), "l4t_release"
        ("R32.7.1"), "l4t_board"}``.
    """
    if not is_jetson(root, release_path):
        return None
    release = release_path if release_path is not None else _join(root, RELEASE_FILE)
    text = _read_text(release)
    rel = parse_l4t_release(text) if text else {"raw": None, "release": None, "board": None}
    return {
        "model": read_model(root),
        "l4t": rel.get("raw"),
        "l4t_release": rel.get("release"),
        "l4t_board": rel.get("board"),
    }


# --------------------------------------------------------------------------- nvpmodel


def parse_nvpmodel(text: str) -> Optional[Dict[str, Any]]:
    """Parse ``nvpmodel -q`` (or ``-q --verbose``) output.

    Args:
        text: E.g. ``"NV Fan Mode:cool\\nNV Power Mode: MAXN\\n0\\n"``.

    Returns:
        ``{"name": "MAXN", "id": 0}`` (``id`` None when the number line is
        missing), or None when no ``NV Power Mode:`` line is present.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"NV Power Mode:\s*(\S+)", line)
        if not m:
            continue
        mode_id = None
        for nxt in lines[i + 1:]:
            s = nxt.strip()
            if re.fullmatch(r"\d+", s):
                mode_id = int(s)
                break
            if s and not s.startswith("NVPM"):
                break
        return {"name": m.group(1), "id": mode_id}
    return None


def read_power_mode(run: Optional[Runner] = None) -> Optional[Dict[str, Any]]:
    """Current power mode from ``nvpmodel -q`` (None when the tool is absent or fails).

    Args:
        run: Command runner (tests); default runs the tool when on PATH, 5 s timeout.
    """
    out = (run or _run_command)(["nvpmodel", "-q"])
    return parse_nvpmodel(out) if out else None


# --------------------------------------------------------------------------- clocks


def _kv(line: str) -> Dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def _int_or_none(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _mhz(value: Optional[int], per_mhz: float) -> Optional[float]:
    return None if value is None else value / per_mhz


def parse_jetson_clocks(text: str) -> Dict[str, Any]:
    """Parse ``jetson_clocks --show``.

    CPU frequencies are printed in kHz, GPU and EMC in Hz; the result gives
    every frequency in MHz.

    Args:
        text: The command's stdout (Nano, TX1, Xavier or Orin format).

    Returns:
        ``{"soc": "tegra210", "machine": str, "online_cpus": "0-3",
        "cpus": [{"cpu": 0, "online": True, "governor": "schedutil",
        "min_mhz", "max_mhz", "cur_mhz"}, ...], "gpu": {"min_mhz", "max_mhz",
        "cur_mhz"} or None, "emc": {"min_mhz", "max_mhz", "cur_mhz",
        "override": 0/1} or None, "power_mode": "MAXN" or None,
        "clocks_pinned": bool or None}``. ``clocks_pinned`` is True when every
        online CPU and the GPU run with min == max (what ``jetson_clocks``
        sets) and the EMC is at its max (override set or min == max).
    """
    out = {
        "soc": None, "machine": None, "online_cpus": None, "cpus": [], "gpu": None, "emc": None,
        "power_mode": None, "clocks_pinned": None,
    }  # type: Dict[str, Any]
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"SOC family:\s*(\S+)\s+Machine:\s*(.+)$", line)
        if m:
            out["soc"], out["machine"] = m.group(1), m.group(2).strip()
            continue
        m = re.match(r"Online CPUs:\s*(\S+)", line)
        if m:
            out["online_cpus"] = m.group(1)
            continue
        m = re.match(r"cpu(\d+):\s*(.*)$", line)
        if m:
            kv = _kv(m.group(2))
            gov = kv.get("Governor") or kv.get("Gonvernor")  # L4T 28 prints the typo
            online = kv.get("Online")
            out["cpus"].append({
                "cpu": int(m.group(1)),
                "online": None if online is None else online == "1",
                "governor": gov,
                "min_mhz": _mhz(_int_or_none(kv.get("MinFreq")), 1e3),
                "max_mhz": _mhz(_int_or_none(kv.get("MaxFreq")), 1e3),
                "cur_mhz": _mhz(_int_or_none(kv.get("CurrentFreq")), 1e3),
            })
            continue
        if line.startswith("GPU ") or line.startswith("EMC "):
            kv = _kv(line)
            entry = {
                "min_mhz": _mhz(_int_or_none(kv.get("MinFreq")), 1e6),
                "max_mhz": _mhz(_int_or_none(kv.get("MaxFreq")), 1e6),
                "cur_mhz": _mhz(_int_or_none(kv.get("CurrentFreq")), 1e6),
            }  # type: Dict[str, Any]
            if line.startswith("EMC "):
                entry["override"] = _int_or_none(kv.get("FreqOverride"))
                out["emc"] = entry
            else:
                out["gpu"] = entry
            continue
        m = re.match(r"NV Power Mode:\s*(\S+)", line)
        if m:
            out["power_mode"] = m.group(1)
    out["clocks_pinned"] = _pinned(out["cpus"], out["gpu"], out["emc"])
    return out


def _pinned(cpus: List[Dict[str, Any]], gpu: Optional[Dict[str, Any]],
            emc: Optional[Dict[str, Any]]) -> Optional[bool]:
    """jetson_clocks state: min == max on online CPUs and the GPU, EMC at max."""
    online = [c for c in cpus if c.get("online") is not False]
    if not online and gpu is None:
        return None
    checks = [c["min_mhz"] is not None and c["min_mhz"] == c["max_mhz"] for c in online]
    if gpu is not None:
        checks.append(gpu["min_mhz"] is not None and gpu["min_mhz"] == gpu["max_mhz"])
    if emc is not None:
        checks.append(emc.get("override") == 1 or (
            emc["min_mhz"] is not None and emc["min_mhz"] == emc["max_mhz"]))
    return all(checks)


def read_clocks_sysfs(root: str = "/") -> Dict[str, Any]:
    """Clocks from cpufreq/devfreq sysfs (no root needed), when ``jetson_clocks --show`` is not.

    Reads ``sys/devices/system/cpu/cpuN/{online,cpufreq/scaling_{min,max,cur}_freq}`` (kHz)
    and the GPU's devfreq ``sys/class/devfreq/*gpu*/{min,max,cur}_freq`` (Hz). The EMC
    clock is only in debugfs (root), so ``emc`` is None here.

    Returns:
        The same shape as :func:`parse_jetson_clocks` (``soc``/``machine`` None).
    """
    cpus = []  # type: List[Dict[str, Any]]
    pattern = _join(root, "sys/devices/system/cpu/cpu[0-9]*")
    for d in sorted(glob.glob(pattern), key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0)):
        idx = int(re.sub(r"\D", "", os.path.basename(d)))
        online = _read_text(os.path.join(d, "online"))
        freq = os.path.join(d, "cpufreq")
        if not os.path.isdir(freq) and online is None:
            continue
        cpus.append({
            "cpu": idx,
            "online": True if online is None else online == "1",
            "governor": _read_text(os.path.join(freq, "scaling_governor")),
            "min_mhz": _mhz(_as_int(_read_number(os.path.join(freq, "scaling_min_freq"))), 1e3),
            "max_mhz": _mhz(_as_int(_read_number(os.path.join(freq, "scaling_max_freq"))), 1e3),
            "cur_mhz": _mhz(_as_int(_read_number(os.path.join(freq, "scaling_cur_freq"))), 1e3),
        })
    gpu = None
    for d in sorted(glob.glob(_join(root, "sys/class/devfreq/*"))):
        name = os.path.basename(d)
        if "gpu" not in name and "gv11b" not in name and "ga10b" not in name and "gp10b" not in name:
            continue
        gpu = {
            "min_mhz": _mhz(_as_int(_read_number(os.path.join(d, "min_freq"))), 1e6),
            "max_mhz": _mhz(_as_int(_read_number(os.path.join(d, "max_freq"))), 1e6),
            "cur_mhz": _mhz(_as_int(_read_number(os.path.join(d, "cur_freq"))), 1e6),
        }
        break
    return {
        "soc": None, "machine": None, "online_cpus": None, "cpus": cpus, "gpu": gpu, "emc": None,
        "power_mode": None, "clocks_pinned": _pinned(cpus, gpu, None),
    }


def _as_int(value: Optional[float]) -> Optional[int]:
    return None if value is None else int(value)


# --------------------------------------------------------------------------- tegrastats

_RAIL_RE = re.compile(r"\b([A-Z][A-Z0-9_]*)\s+(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)mW)?(?![\w/])")
_TEMP_RE = re.compile(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b")


def parse_tegrastats(line: str) -> Dict[str, Any]:
    """Parse one ``tegrastats`` line (Nano/TX1 JetPack 4 or Xavier/Orin JetPack 5/6 format).

    Rails are printed in mW as ``current/average`` — bare numbers on JetPack 4
    (``POM_5V_IN 2473/2473``), with ``mW`` suffixes on JetPack 5+
    (``VDD_IN 4787mW/4787mW``; JetPack 6.2+ adds a third, peak, value).

    Args:
        line: One line of tegrastats output (a leading timestamp is allowed).

    Returns:
        ``{"ram_used_mb", "ram_total_mb", "swap_used_mb", "swap_total_mb",
        "cpus": [{"load_pct", "freq_mhz"} or None (core off), ...],
        "gr3d_pct", "gr3d_mhz", "emc_pct", "emc_mhz",
        "temps_c": {sensor: degC} (offline sensors at -256 C dropped),
        "rails_mw": {rail: {"cur": mW, "avg": mW}},
        "total_rail": "VDD_IN"/"POM_5V_IN"/None, "total_mw": mW or None}``.
        Fields absent from the line are None (or empty).
    """
    out = {
        "ram_used_mb": None, "ram_total_mb": None, "swap_used_mb": None, "swap_total_mb": None,
        "cpus": [], "gr3d_pct": None, "gr3d_mhz": None, "emc_pct": None, "emc_mhz": None,
        "temps_c": {}, "rails_mw": {}, "total_rail": None, "total_mw": None,
    }  # type: Dict[str, Any]
    m = re.search(r"\bRAM (\d+)/(\d+)MB", line)
    if m:
        out["ram_used_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"\bSWAP (\d+)/(\d+)MB", line)
    if m:
        out["swap_used_mb"], out["swap_total_mb"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"\bCPU \[([^\]]*)\](?:@(\d+))?", line)
    if m:
        shared = int(m.group(2)) if m.group(2) else None
        for item in m.group(1).split(","):
            item = item.strip()
            cm = re.match(r"(\d+)%(?:@(\d+))?$", item)
            if cm:
                freq = int(cm.group(2)) if cm.group(2) else shared
                out["cpus"].append({"load_pct": int(cm.group(1)), "freq_mhz": freq})
            else:
                out["cpus"].append(None)  # "off" or unparseable
    m = re.search(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+))?", line)
    if m:
        out["gr3d_pct"] = int(m.group(1))
        out["gr3d_mhz"] = int(m.group(2)) if m.group(2) else None
    m = re.search(r"\bEMC_FREQ (\d+)%(?:@(\d+))?", line)
    if m:
        out["emc_pct"] = int(m.group(1))
        out["emc_mhz"] = int(m.group(2)) if m.group(2) else None
    for name, value in _TEMP_RE.findall(line):
        v = float(value)
        if v > -100.0:
            out["temps_c"][name] = v
    for name, cur, avg, _peak in _RAIL_RE.findall(line):
        if name in ("RAM", "SWAP", "IRAM", "CPU"):
            continue
        out["rails_mw"][name] = {"cur": float(cur), "avg": float(avg)}
    for name in TOTAL_RAIL_NAMES:
        if name in out["rails_mw"]:
            out["total_rail"] = name
            out["total_mw"] = out["rails_mw"][name]["cur"]
            break
    return out


# --------------------------------------------------------------------------- INA3221 rails


class _Rail(object):
    """One INA3221 channel in sysfs; :meth:`read` gives power in mW."""

    def __init__(self, name: str, layout: str, power: Optional[str] = None,
                 voltage: Optional[str] = None, current: Optional[str] = None) -> None:
        self.name = name
        self.layout = layout
        self.power = power
        self.voltage = voltage
        self.current = current

    def read(self) -> Dict[str, Optional[float]]:
        """``{"power_mw", "voltage_mv", "current_ma"}`` now (None where unreadable)."""
        v = _read_number(self.voltage) if self.voltage else None
        i = _read_number(self.current) if self.current else None
        p = _read_number(self.power) if self.power else None
        if p is None and v is not None and i is not None:
            p = v * i / 1000.0  # mV x mA = uW -> mW
        return {"power_mw": p, "voltage_mv": v, "current_ma": i}

    def read_power_mw(self) -> Optional[float]:
        """Power in mW: the driver's ``in_powerN_input`` or bus mV x mA / 1000."""
        if self.power:
            return _read_number(self.power)
        v = _read_number(self.voltage) if self.voltage else None
        i = _read_number(self.current) if self.current else None
        return None if v is None or i is None else v * i / 1000.0

    def describe(self) -> Dict[str, Any]:
        return {"name": self.name, "layout": self.layout,
                "files": [p for p in (self.power, self.voltage, self.current) if p]}


def find_rails(root: str = "/") -> List[_Rail]:
    """Every INA3221 rail under ``root`` (Nano IIO layout first, then Orin hwmon layout).

    Channels without a name (``rail_name_N`` / ``inN_label``) and the hwmon
    "sum of shunt voltages" channel are skipped.
    """
    rails = []  # type: List[_Rail]
    for dev in sorted(glob.glob(_join(root, NANO_IIO_GLOB))):
        for name_file in sorted(glob.glob(os.path.join(dev, "rail_name_*"))):
            idx = name_file.rsplit("_", 1)[-1]
            name = _read_text(name_file)
            if not name:
                continue
            rails.append(_Rail(
                name, "ina3221x-iio",
                power=os.path.join(dev, "in_power{}_input".format(idx)),
                voltage=os.path.join(dev, "in_voltage{}_input".format(idx)),
                current=os.path.join(dev, "in_current{}_input".format(idx)),
            ))
    for dev in sorted(glob.glob(_join(root, HWMON_GLOB))):
        for label_file in sorted(glob.glob(os.path.join(dev, "in*_label"))):
            idx = os.path.basename(label_file)[2:-len("_label")]
            name = _read_text(label_file)
            if not name or "sum of" in name.lower():
                continue
            curr = os.path.join(dev, "curr{}_input".format(idx))
            if not os.path.exists(curr):
                continue
            rails.append(_Rail(name, "ina3221-hwmon",
                               voltage=os.path.join(dev, "in{}_input".format(idx)), current=curr))
    return rails


def read_rails_sysfs(root: str = "/") -> Dict[str, Dict[str, Any]]:
    """Snapshot of every INA3221 rail from sysfs.

    Returns:
        ``{rail: {"power_mw", "voltage_mv", "current_ma", "layout"}}`` (empty
        when there is no INA3221 in sysfs or it is unreadable).
    """
    out = {}  # type: Dict[str, Dict[str, Any]]
    for rail in find_rails(root):
        reading = rail.read()  # type: Dict[str, Any]
        reading["layout"] = rail.layout
        out[rail.name] = reading
    return out


def read_rails_jtop(jtop_factory: Optional[Callable[[], Any]] = None) -> Optional[Dict[str, Dict[str, Any]]]:
    """Snapshot of the rails through jetson-stats, or None when jtop is unavailable.

    Handles jetson-stats 4.x (``jetson.power == {"rail": {name: {"volt", "curr",
    "power", ...}}, "tot": {...}}``, mV/mA/mW) and 3.x (``(total, {name: {"cur",
    "avg"}})`` in mW).

    Args:
        jtop_factory: Builds a ``jtop`` context manager (tests); default ``jtop.jtop``.
    """
    try:
        if jtop_factory is None:
            from jtop import jtop as jtop_factory  # type: ignore
        with jtop_factory() as jetson:
            if hasattr(jetson, "ok") and not jetson.ok():
                return None
            power = jetson.power
    except Exception:  # not installed, service not running, API differences
        return None
    out = {}  # type: Dict[str, Dict[str, Any]]
    if isinstance(power, dict) and isinstance(power.get("rail"), dict):
        for name, r in power["rail"].items():
            out[str(name)] = {"power_mw": _f(r.get("power")), "voltage_mv": _f(r.get("volt")),
                              "current_ma": _f(r.get("curr")), "layout": "jtop"}
    elif isinstance(power, (tuple, list)) and len(power) == 2 and isinstance(power[1], dict):
        for name, r in power[1].items():
            out[str(name)] = {"power_mw": _f(r.get("cur")), "voltage_mv": None,
                              "current_ma": None, "layout": "jtop"}
    return out or None


def _f(value: Any) -> Optional[float]:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def read_rails(root: str = "/", use_jtop: bool = True) -> Tuple[Dict[str, Dict[str, Any]], Optional[str]]:
    """Rails snapshot: jetson-stats when importable (and ``root`` is ``/``), sysfs otherwise.

    Returns:
        ``(rails, source)`` with ``source`` ``"jtop"``, ``"sysfs"`` or None (no rails).
    """
    if use_jtop and os.path.abspath(root) == "/":
        rails = read_rails_jtop()
        if rails:
            return rails, "jtop"
    rails = read_rails_sysfs(root)
    return rails, ("sysfs" if rails else None)


def total_rail_reader(root: str = "/") -> Optional[Tuple[str, Callable[[], Optional[float]], Dict[str, Any]]]:
    """A fast reader of total board power from sysfs, for energy sampling.

    Prefers the board input rail (``VDD_IN``, then ``POM_5V_IN``); a board
    without one (e.g. AGX Orin: VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, ...)
    gets the sum of all module rails, named ``"sum(A+B+...)"``.

    sysfs rather than jtop because the meter samples every few tens of ms and
    jtop refreshes at its own (≥ 0.1 s, default 1 s) interval.

    Returns:
        ``(rail_name, read_mw, description)`` — ``read_mw()`` gives the power in
        mW (None when a read fails) — or None when no readable rail exists.
    """
    rails = [r for r in find_rails(root) if r.read_power_mw() is not None]
    if not rails:
        return None
    by_name = {r.name: r for r in rails}
    for name in TOTAL_RAIL_NAMES:
        if name in by_name:
            rail = by_name[name]
            return name, rail.read_power_mw, {"rail": name, "kind": "board input rail",
                                               "files": rail.describe()["files"], "layout": rail.layout}
    name = "sum(" + "+".join(r.name for r in rails) + ")"

    def read_sum() -> Optional[float]:
        vals = [r.read_power_mw() for r in rails]
        return None if any(v is None for v in vals) else float(sum(vals))  # type: ignore

    return name, read_sum, {"rail": name, "layout": rails[0].layout,
                            "kind": "sum of module rails (no board input rail on this board)",
                            "files": [f for r in rails for f in r.describe()["files"]]}


# --------------------------------------------------------------------------- energy sampling


def integrate_trapezoid_j(samples: Sequence[Tuple[float, float]]) -> Optional[float]:
    """Energy in J from ``(time_s, power_mW)`` samples by the trapezoid rule.

    Args:
        samples: Time-ordered pairs; ``time_s`` in seconds (any origin),
            power in mW. Pairs whose power is None are skipped.

    Returns:
        Joules (mW x s / 1000), or None with fewer than two valid samples.
    """
    pts = [(t, p) for t, p in samples if p is not None]
    if len(pts) < 2:
        return None
    mj = 0.0
    for (t0, p0), (t1, p1) in zip(pts, pts[1:]):
        mj += 0.5 * (p0 + p1) * (t1 - t0)
    return mj / 1000.0


class RailSampler(object):
    """Samples a power reader at a fixed interval in a background thread.

    A sample is taken synchronously in :meth:`start` and in :meth:`stop`, so
    the integration window is exactly start..stop; the thread adds samples
    every ``interval_s`` in between.

    Args:
        read_mw: Zero-argument callable giving power in mW (None on a failed read).
        interval_s: Sampling interval, seconds (> 0).
        clock: Monotonic clock in seconds (tests); default ``time.monotonic``.
        threaded: False takes only the start/stop samples plus explicit
            :meth:`sample_now` calls (deterministic tests).

    Raises:
        ValueError: ``interval_s <= 0``.
    """

    def __init__(self, read_mw: Callable[[], Optional[float]], interval_s: float = 0.05,
                 clock: Optional[Callable[[], float]] = None, threaded: bool = True) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s must be > 0, got {}".format(interval_s))
        self.read_mw = read_mw
        self.interval_s = float(interval_s)
        self.clock = clock or time.monotonic
        self.threaded = threaded
        self.samples = []  # type: List[Tuple[float, Optional[float]]]
        self.failed_reads = 0
        self._stop = threading.Event()
        self._thread = None  # type: Optional[threading.Thread]
        self._lock = threading.Lock()

    def sample_now(self) -> None:
        """Read the power once and record ``(clock(), mW)``."""
        try:
            p = self.read_mw()
        except Exception:
            p = None
        t = self.clock()
        with self._lock:
            if p is None:
                self.failed_reads += 1
            self.samples.append((t, p))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    def start(self) -> None:
        """Clear old samples, take the first one and start the thread."""
        with self._lock:
            self.samples = []
            self.failed_reads = 0
        self._stop.clear()
        self.sample_now()
        if self.threaded:
            self._thread = threading.Thread(target=self._loop, name="evbench-rail-sampler")
            self._thread.daemon = True
            self._thread.start()

    def stop(self) -> List[Tuple[float, Optional[float]]]:
        """Stop the thread, take the last sample and return all ``(time_s, mW)`` samples."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample_now()
        with self._lock:
            return list(self.samples)

    def joules(self) -> Optional[float]:
        """Energy of the recorded samples, J (trapezoid rule); None with < 2 valid samples."""
        with self._lock:
            return integrate_trapezoid_j([(t, p) for t, p in self.samples if p is not None])


# --------------------------------------------------------------------------- the whole picture


def jetson_info(root: str = "/", release_path: Optional[str] = None, run: Optional[Runner] = None,
                use_jtop: bool = True) -> Optional[Dict[str, Any]]:
    """Board model, L4T release, power mode, clocks and rails; None off a Jetson.

    Args:
        root: Filesystem root (tests point it at a fake tree).
        release_path: Override of the L4T release file.
        run: Command runner for ``nvpmodel``/``jetson_clocks`` (tests); default
            runs them only when on PATH, with a 5 s timeout each.
        use_jtop: Read the rails through jetson-stats when importable.

    Returns:
        None off a Jetson, else a JSON-serialisable dict::

            {"model", "l4t", "l4t_release", "l4t_board",
             "power_mode": "MAXN" or None, "power_mode_id": 0 or None,
             "jetson_clocks": True/False/None (clocks pinned),
             "clocks_source": "jetson_clocks --show" / "sysfs" / None,
             "cpu_mhz": [cur MHz per online core], "cpu_max_mhz": float,
             "gpu_mhz": {"min_mhz", "max_mhz", "cur_mhz"} or None,
             "emc_mhz": {...} or None (needs jetson_clocks --show, i.e. root),
             "clocks": the full parsed clock dict,
             "rails": [rail names], "rails_source": "jtop"/"sysfs"/None,
             "total_rail": "VDD_IN"/"POM_5V_IN"/"sum(...)"/None, "total_power_mw"}
    """
    ident = detect(root, release_path)
    if ident is None:
        return None
    runner = run or _run_command
    mode = read_power_mode(runner)
    clocks = None  # type: Optional[Dict[str, Any]]
    clocks_source = None  # type: Optional[str]
    out = runner(["jetson_clocks", "--show"])
    if out:
        parsed = parse_jetson_clocks(out)
        if parsed["cpus"] or parsed["gpu"]:
            clocks, clocks_source = parsed, "jetson_clocks --show"
            if mode is None and parsed.get("power_mode"):
                mode = {"name": parsed["power_mode"], "id": None}
    if clocks is None:
        parsed = read_clocks_sysfs(root)
        if parsed["cpus"] or parsed["gpu"]:
            clocks, clocks_source = parsed, "sysfs"
    rails, rails_source = read_rails(root, use_jtop=use_jtop)
    total = total_rail_reader(root)
    total_mw = None
    if total is not None:
        total_mw = total[1]()
    elif rails:
        for name in TOTAL_RAIL_NAMES:
            if name in rails:
                total, total_mw = (name, None, {}), rails[name].get("power_mw")  # type: ignore
                break
    cpus = (clocks or {}).get("cpus") or []
    online = [c for c in cpus if c.get("online") is not False]
    info = dict(ident)  # type: Dict[str, Any]
    info.update({
        "power_mode": mode["name"] if mode else None,
        "power_mode_id": mode["id"] if mode else None,
        "jetson_clocks": clocks.get("clocks_pinned") if clocks else None,
        "clocks_source": clocks_source,
        "cpu_mhz": [c.get("cur_mhz") for c in online] if online else None,
        "cpu_max_mhz": max([c["max_mhz"] for c in online if c.get("max_mhz") is not None] or [0]) or None,
        "gpu_mhz": (clocks or {}).get("gpu"),
        "emc_mhz": (clocks or {}).get("emc"),
        "clocks": clocks,
        "rails": sorted(rails) if rails else [],
        "rails_source": rails_source,
        "total_rail": total[0] if total else None,
        "total_power_mw": total_mw,
    })
    return info
