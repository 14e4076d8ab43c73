"""requirements.txt lines: normalised (for environment keys) and checked (for safety)."""

from __future__ import annotations

import re

from .errors import ArchiveError

_COMMENT = re.compile(r"(^|\s)#.*$")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_ONE_SPEC = r"(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+"
_SPECS = rf"{_ONE_SPEC}(?:\s*,\s*{_ONE_SPEC})*"
_EXTRAS = rf"\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\]"
# A plain requirement: name, extras, version specifiers. Anything else names a location.
_PLAIN = re.compile(rf"^({_NAME})\s*({_EXTRAS})?\s*(\(\s*{_SPECS}\s*\)|{_SPECS})?$")
_HEAD = re.compile(rf"^({_NAME})\s*(\[[^\]]*\])?(.*)$", re.DOTALL)
_MARKER = re.compile(r"^[\w\s.'\"<>=!~(),*+-]*$")
_HASH = re.compile(r"^--hash[=:]?[A-Za-z0-9]+:[0-9A-Fa-f]+$")


def _requirement_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        # pip joins a line ending in a backslash with the next (pip-compile writes hashes so).
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    tail = _COMMENT.sub("", pending).strip()
    return [*lines, tail] if tail else lines


def _split_hashes(line: str) -> tuple[str, list[str]]:
    """A requirement line without its `--hash=` options, and those options."""
    words = line.split()
    hashes = [w for w in words if _HASH.match(w)]
    return " ".join(w for w in words if not _HASH.match(w)), hashes


def _normalise_line(line: str) -> str:
    if line.startswith("-"):
        return " ".join(line.split())  # paths and URLs in options are case-sensitive
    body, hashes = _split_hashes(line)
    requirement, _, marker = body.partition(";")
    match = _HEAD.match(requirement.strip())
    if match is None:
        return " ".join(line.split())
    name = re.sub(r"[-_.]+", "-", match[1]).lower()  # PEP 503: Foo_Bar and foo-bar are one
    extras = re.sub(r"\s+", "", match[2] or "").lower()
    rest = match[3].strip()
    # A direct reference keeps its URL's case; version specifiers are case-insensitive.
    rest = " @ " + rest[1:].strip() if rest.startswith("@") else re.sub(r"\s+", "", rest).lower()
    marker = " ".join(marker.split())  # marker values ("Linux", "Windows") keep their case
    suffix = (f"; {marker}" if marker else "") + "".join(f" {h}" for h in sorted(hashes))
    return f"{name}{extras}{rest}{suffix}"


def normalise_requirements(text: str) -> list[str]:
    """Requirement lines without comments, blanks, case or order differences."""
    return sorted({_normalise_line(line) for line in _requirement_lines(text)})


def _line_problem(line: str) -> str | None:
    """Why a requirement line may not be installed without the operator's consent."""
    body, _ = _split_hashes(line)
    if line.startswith("-") or any(word.startswith("-") for word in body.split()[1:]):
        return (
            f"requirements.txt: option line {line!r} is not allowed "
            "(indexes, editable installs, nested files and build options are set by the "
            "server's operator)"
        )
    requirement, _, marker = body.partition(";")
    if _PLAIN.match(requirement.strip()) is None:
        return (
            f"requirements.txt: direct reference {line!r} is not allowed; name a package "
            "and version from the configured index instead"
        )
    if not _MARKER.match(marker):
        return f"requirements.txt: environment marker in {line!r} is not understood"
    return None


def check_requirements(text: str, allow_options: bool) -> None:
    """Reject lines that point the installer elsewhere, unless the operator allows them."""
    if allow_options:
        return
    for line in _requirement_lines(text):
        problem = _line_problem(line)
        if problem is not None:
            raise ArchiveError(problem)
