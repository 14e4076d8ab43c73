"""The server's pip configuration, carried over to uv (indexes, find-links, proxy, certificates).

Air-gapped deployments configure pip once (`pip.conf`, `PIP_*`); environments built with uv
honour the same settings wherever uv's own `UV_*` variables leave them unset.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_TRUE = frozenset({"1", "true", "yes", "on"})
# `index-strategy = ...` in a uv.toml (top level or [pip]; a line of its own in TOML).
_INDEX_STRATEGY = re.compile(r"^\s*index-strategy\s*=", re.MULTILINE)


def _pip_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files, lowest precedence first (as pip loads them)."""
    chosen = environ.get("PIP_CONFIG_FILE")
    if chosen == os.devnull:
        return []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(":") if d]
    files.append(Path("/etc/pip.conf"))
    if not (chosen and Path(chosen).exists()):  # pip skips the user's files then
        home = Path(environ.get("HOME") or Path.home())
        config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    files.append(Path(sys.prefix) / "pip.conf")
    return [*files, Path(chosen)] if chosen else files


def pip_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """pip's effective settings: [global], then [install], then PIP_* variables."""
    parser = configparser.RawConfigParser()
    try:
        parser.read([f for f in _pip_config_files(environ) if f.is_file()], encoding="utf-8")
    except configparser.Error as exc:  # pip would refuse to run too; say so in the log
        log.warning("unreadable pip configuration: %s", exc)
    settings: dict[str, str] = {}
    for section in ("global", "install"):
        if parser.has_section(section):
            settings.update({k.replace("_", "-"): v for k, v in parser.items(section)})
    for name, value in environ.items():
        if name.startswith("PIP_"):
            settings[name[4:].lower().replace("_", "-")] = value
    return settings


def _existing(values: list[str], notes: list[str]) -> list[str]:
    """Locations that can be read: a missing local folder is noted and skipped, not fatal."""
    kept = []
    for value in values:
        path = value.removeprefix("file://")
        if "://" in path:
            kept.append(value)
        elif not Path(path).exists():
            notes.append(f"skipped {value}: not found")
        elif path == value:  # the installer runs elsewhere: a relative folder is the server's
            kept.append(str(Path(path).absolute()))
        else:
            kept.append(value)
    return kept


def _flags(flag: str, values: list[str]) -> list[str]:
    return [arg for value in values for arg in (flag, value)]


def uv_settings(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
    """uv arguments and variables carrying the server's pip configuration (index, proxy).

    uv reads its own UV_* variables itself; pip's settings fill only what those leave unset.
    """
    pip = pip_settings(environ)
    args: list[str] = []
    env: dict[str, str] = {}
    notes: list[str] = []
    uv_no_index = environ.get("UV_NO_INDEX")  # not read by uv itself (0.13)
    if (uv_no_index or pip.get("no-index", "")).lower() in _TRUE:
        args.append("--no-index")
    if "index-url" in pip and not {"UV_INDEX_URL", "UV_DEFAULT_INDEX"} & environ.keys():
        args += _flags("--index-url", _existing(pip["index-url"].split()[:1], notes))
    if "extra-index-url" in pip and not {"UV_EXTRA_INDEX_URL", "UV_INDEX"} & environ.keys():
        extra = _existing(pip["extra-index-url"].split(), notes)
        args += _flags("--extra-index-url", extra)
        # pip takes the best version from every index; uv by default only looks at the first
        # index that has the package (and extra indexes come first). Keep pip's meaning.
        if extra and not uv_index_strategy_set(environ):
            args += ["--index-strategy", "unsafe-best-match"]
    if "find-links" in pip and "UV_FIND_LINKS" not in environ:
        args += _flags("--find-links", _existing(pip["find-links"].split(), notes))
    if "trusted-host" in pip and "UV_INSECURE_HOST" not in environ:
        args += _flags("--allow-insecure-host", pip["trusted-host"].split())
    proxies = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}
    if pip.get("proxy") and not proxies & environ.keys():
        env["HTTP_PROXY"] = env["HTTPS_PROXY"] = pip["proxy"]
    if pip.get("cert") and "SSL_CERT_FILE" not in environ and Path(pip["cert"]).is_file():
        env["SSL_CERT_FILE"] = pip["cert"]
    return args, env, notes


def _uv_config_files(environ: Mapping[str, str]) -> list[Path]:
    """uv's configuration files (`UV_CONFIG_FILE`, the user's, the system's)."""
    if environ.get("UV_CONFIG_FILE"):
        return [Path(environ["UV_CONFIG_FILE"])]
    home = Path(environ.get("HOME") or Path.home())
    config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    xdg_dirs = (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    return [
        config_home / "uv" / "uv.toml",
        *(Path(d) / "uv" / "uv.toml" for d in xdg_dirs if d),
        Path("/etc/uv/uv.toml"),
    ]


def uv_index_strategy_set(environ: Mapping[str, str]) -> bool:
    """Whether the administrator chose uv's index strategy (`UV_INDEX_STRATEGY`, or
    `index-strategy` in a `uv.toml`, at its top or under `[pip]`)."""
    if environ.get("UV_INDEX_STRATEGY"):
        return True
    for path in _uv_config_files(environ):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, ValueError):
            continue
        if _INDEX_STRATEGY.search(text):
            return True
    return False


def redact(text: str) -> str:
    """Text without the credentials of URLs (`https://user:token@host` -> `https://***@host`)."""
    return _CREDENTIALS.sub(r"\1***@", text)
