"""Can Qt open a window here? Asked before the app starts, because a Qt platform plugin that cannot load
aborts the process (SIGABRT) with a generic message. Torch-free, Qt-free until the child process."""

from __future__ import annotations

import ctypes.util
import os
import re
import subprocess
import sys
from pathlib import Path

HEADLESS = ("offscreen", "minimal", "vnc")
_PROBE = "import sys\nfrom PySide6.QtWidgets import QApplication\nQApplication(sys.argv[:1])\n"


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package of a shared library, by Debian's naming rule for library packages:
    `libxcb-cursor.so.0` -> `libxcb-cursor0`, `libxkbcommon-x11.so.0` -> `libxkbcommon-x11-0`."""
    match = re.match(r"(.+?)\.so\.(\d+)", soname)
    if not match:
        return soname
    name, major = match.group(1).lower(), match.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def missing_libraries(plugin: Path) -> list[str]:
    """Shared libraries `ldd` cannot find for a Qt platform plugin ([] when ldd is unavailable)."""
    try:
        out = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split()[0] for line in out.splitlines() if "not found" in line})


def _platform_plugin(name: str) -> Path | None:
    try:
        import PySide6
    except ImportError:
        return None
    folder = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms"
    return next(iter(folder.glob(f"libq{name}*.so")), None)


def display_problem(env: dict[str, str] | None = None, timeout_s: float = 30.0) -> str | None:
    """None when Qt can start its platform here, else one line naming the cause and the fix.

    The platform is $QT_QPA_PLATFORM, else Qt's default (xcb on Linux). Headless platforms (offscreen)
    always start. Otherwise a child process starts a QApplication; when it fails, the platform plugin's
    missing libraries are named with their Debian/Ubuntu packages, or the missing display is named.
    """
    env = dict(os.environ if env is None else env)
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0]
    if platform in HEADLESS or not sys.platform.startswith("linux"):
        return None
    if platform in ("", "xcb") and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "no display: stop-gui needs a desktop session (DISPLAY or WAYLAND_DISPLAY is unset); "
            "for headless use run it with QT_QPA_PLATFORM=offscreen"
        )
    try:
        child = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return f"Qt could not open the display within {timeout_s:.0f} s (DISPLAY={env.get('DISPLAY', '')!r})"
    if child.returncode == 0:
        return None
    plugin = _platform_plugin(platform or "xcb")
    missing = missing_libraries(plugin) if plugin else []
    if missing:
        packages = " ".join(debian_package(lib) for lib in missing)
        return (
            f"Qt's {platform or 'xcb'} platform plugin needs libraries that are not installed "
            f"({', '.join(missing)}): on Debian/Ubuntu, sudo apt install {packages}"
        )
    if "could not connect to display" in child.stderr:
        return (
            f"Qt could not connect to the display {env.get('DISPLAY', '')!r}: is the X server running? "
            "For headless use run stop-gui with QT_QPA_PLATFORM=offscreen"
        )
    # Qt loads xcb-cursor with dlopen (ldd does not see it) and prints this hint on any xcb failure
    if re.search(r"xcb-cursor0|libxcb-cursor0", child.stderr) and not ctypes.util.find_library("xcb-cursor"):
        return "Qt's xcb platform plugin needs libxcb-cursor0: on Debian/Ubuntu, sudo apt install libxcb-cursor0"
    lines = [line.strip() for line in child.stderr.splitlines() if line.strip()]
    reason = next(
        (line for line in lines if "platform plugin" in line), lines[-1] if lines else f"exit {child.returncode}"
    )
    return f"Qt cannot start its {platform or 'default'} platform here: {reason}"
