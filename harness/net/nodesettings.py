"""The sysctls every node gets, whatever engine built it."""

from __future__ import annotations

BASE_SYSCTLS = {
    # IPv6 addresses usable at once: duplicate address detection only adds delay here
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    # a node with several addresses in one subnet keeps the others when the first one goes
    "net.ipv4.conf.all.promote_secondaries": "1",
    "net.ipv4.conf.default.promote_secondaries": "1",
}
# A new namespace copies the host's IPv4 conf/all and conf/default (and IPv6's too where
# net.core.devconf_inherit_init_net is 1), so a host where Docker turned on forwarding or
# systemd set rp_filter would change what every scenario means. Every setting that
# changes how a node treats packets is therefore set explicitly, to the kernel's
# defaults, before any link exists (links copy conf/default when they are created).
_PRISTINE_IPV4_CONF = {
    "rp_filter": "0",
    "accept_redirects": "1",
    "send_redirects": "1",
    "secure_redirects": "1",
    "accept_local": "0",
    "route_localnet": "0",
    "src_valid_mark": "0",
    "log_martians": "0",
    "arp_ignore": "0",
    "arp_announce": "0",
    "arp_filter": "0",
    "arp_accept": "0",
    "proxy_arp": "0",
    "bc_forwarding": "0",
}
PRISTINE_SYSCTLS = {
    f"net.ipv4.conf.{scope}.{key}": value for scope in ("all", "default") for key, value in _PRISTINE_IPV4_CONF.items()
}
PRISTINE_SYSCTLS.update({"net.ipv6.conf.all.accept_redirects": "1", "net.ipv6.conf.default.accept_redirects": "1"})
# ip_forward first: writing it resets every conf/*/forwarding of IPv4
FORWARDING_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1", "net.ipv6.conf.default.forwarding": "1"}
NO_FORWARDING_SYSCTLS = {key: "0" for key in FORWARDING_SYSCTLS}


def node_sysctls(forwards: bool, extra: dict[str, str]) -> dict[str, str]:
    """Every sysctl a node gets, in write order: forwarding, then the pristine
    settings, then the harness's own, then the scenario's (which win)."""
    sysctls = dict(FORWARDING_SYSCTLS if forwards else NO_FORWARDING_SYSCTLS)
    sysctls.update(PRISTINE_SYSCTLS)
    sysctls.update(BASE_SYSCTLS)
    sysctls.update(extra)
    return sysctls
