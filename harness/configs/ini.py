"""The INI-like syntax both wg-quick and systemd-networkd use: `[Section]` headers,
`Key = Value` lines, `#` comments (and `;` in systemd's files), sections that repeat
([Peer], [WireGuardPeer]) and keys that repeat (Address, AllowedIPs). Python's
configparser rejects repeated sections and keys, so this keeps every one, in order,
with its line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

MAX_FILE_BYTES = 256 * 1024


class ConfigFileError(HarnessError, ValueError):
    """A problem in a config file, located: `file:line: message`."""

    def __init__(self, file: str | None, line: int | None, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


@dataclass(frozen=True)
class Setting:
    key: str  # as written
    value: str
    line: int


@dataclass
class Section:
    name: str  # as written, without brackets
    line: int
    settings: list[Setting] = field(default_factory=list)

    def all(self, key: str, *, case_sensitive: bool) -> list[Setting]:
        if case_sensitive:
            return [s for s in self.settings if s.key == key]
        return [s for s in self.settings if s.key.lower() == key.lower()]


def read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigFileError(str(path), None, f"larger than {MAX_FILE_BYTES // 1024} KiB: not a WireGuard config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(str(path), data[: exc.start].count(b"\n") + 1, "not UTF-8 text") from None


def parse_sections(text: str, file: str, *, comments: str = "#") -> list[Section]:
    """Every section with its settings, in file order. A comment starts at any of
    `comments` (wg(8) strips one anywhere on a line; systemd only at its start)."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if comments == "#":
            line = line.split("#", 1)[0]
        elif line.lstrip()[:1] in tuple(comments):
            continue
        line = line.strip()
        if not line:
            continue
        if not line.isprintable():
            raise ConfigFileError(file, number, "control characters in the line")
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigFileError(file, number, f"{line!r} is not a section header like [Interface]")
            sections.append(Section(line[1:-1].strip(), number))
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise ConfigFileError(file, number, f"{line!r} is not 'Key = Value'")
        if not sections:
            raise ConfigFileError(file, number, f"{key.strip()} comes before any [section]")
        sections[-1].settings.append(Setting(key.strip(), value.strip(), number))
    return sections
