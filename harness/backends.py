"""The WireGuard implementations a run can use, by name (pure).

Every choice list reads this table: `wgh run --backend`, `pytest --wg-backend`,
`wgh matrix --backends`, a file's `backend:`, and the capability checks.
harness/wg/backends.py holds a device class for each name.

`userspace` is any implementation that speaks the cross-platform UAPI on
/var/run/wireguard/<ifname>.sock (wireguard-go, boringtun, wireguard-rs, ...), started
from a command template the user gives on the command line, e.g.
`--backend userspace --userspace 'boringtun-cli --foreground {ifname}'`. A file may ask
for `backend: userspace` but never carries the command itself: a scenario file must not
choose what runs as root on the host.
"""

from __future__ import annotations

import shlex
import string
from dataclasses import dataclass

from harness.errors import HarnessError

AUTO = "auto"
USERSPACE = "userspace"
MAX_TEMPLATE = 500


@dataclass(frozen=True)
class BackendKind:
    name: str
    description: str
    userspace: bool  # a process that serves the UAPI socket (else: a kernel interface)


BACKENDS: dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("kernel", "the Linux kernel module (wireguard.ko)", userspace=False),
        BackendKind("wireguard-go", "wireguard-go, the Go userspace implementation", userspace=True),
        BackendKind(USERSPACE, "any UAPI-speaking userspace implementation, started from --userspace TEMPLATE", userspace=True),
    )
}
CHOICES: tuple[str, ...] = (AUTO, *BACKENDS)


class TemplateError(HarnessError, ValueError):
    """A userspace command template that cannot be used; the message says why."""


@dataclass(frozen=True)
class UserspaceCommand:
    """A command template with `{ifname}`, split as a shell would split it but never run
    through one: each word becomes one argument."""

    template: str
    argv: tuple[str, ...]

    @classmethod
    def parse(cls, template: str) -> "UserspaceCommand":
        if len(template) > MAX_TEMPLATE or not template.isprintable():
            raise TemplateError(f"a userspace command is one printable line of at most {MAX_TEMPLATE} characters")
        try:
            argv = tuple(shlex.split(template))
        except ValueError as exc:
            raise TemplateError(f"cannot split {template!r} into words: {exc}") from None
        if not argv:
            raise TemplateError("the userspace command is empty")
        fields = {name for word in argv for _, name, _, _ in string.Formatter().parse(word) if name is not None}
        if fields != {"ifname"}:
            extra = sorted(fields - {"ifname"})
            raise TemplateError(
                f"{template!r}: " + (f"unknown placeholder {{{extra[0]}}}; " if extra else "")
                + "the command must name the interface as {ifname}, e.g. 'wireguard-go -f {ifname}'"
            )
        return cls(template, argv)

    def argv_for(self, ifname: str) -> list[str]:
        return [word.format(ifname=ifname) for word in self.argv]

    @property
    def program(self) -> str:
        return self.argv[0]
