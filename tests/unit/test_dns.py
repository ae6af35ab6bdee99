"""Endpoints given by DNS name: the wire format, the plan, the format's checks (no root)."""

import ipaddress
import textwrap
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSRR

from harness.errors import ScenarioError
from harness.net.dns import dnsmasq_argv
from harness.dnsnames import is_dns_name
from harness.net.dnswire import DnsError, build_query, hosts_file, parse_response
from harness.plan.dns import dns_servers, resolver_for, servers_of
from harness.plan.network import EndpointPlan, build_plan
from harness.scenario.load import load_text

FILE = "scenarios/x.yaml"
ip = ipaddress.ip_address


# --- DNS messages ---------------------------------------------------------------


def _reply(query: bytes, *records: DNSRR, rcode: int = 0, **overrides) -> bytes:
    request = DNS(query)
    fields = dict(id=request.id, qr=1, aa=1, rd=1, ra=0, rcode=rcode, qd=request.qd, an=list(records))
    fields.update(overrides)
    return bytes(DNS(**fields))


def test_query_asks_for_one_name_and_type():
    message = DNS(build_query("server.wgh.test", "AAAA", 4242))
    assert message.id == 4242 and message.qr == 0 and message.rd == 1
    assert message.qdcount == 1
    assert message.qd[0].qname == b"server.wgh.test."
    assert message.qd[0].qtype == 28


def test_query_type_must_be_an_address_type():
    with pytest.raises(ValueError, match="unsupported"):
        build_query("server.wgh.test", "MX", 1)


def test_a_records_are_returned_in_order_with_the_smallest_ttl():
    query = build_query("server.wgh.test", "A", 7)
    data = _reply(
        query,
        DNSRR(rrname="server.wgh.test.", type="A", ttl=60, rdata="198.18.2.2"),
        DNSRR(rrname="server.wgh.test.", type="A", ttl=30, rdata="198.18.2.3"),
    )
    answer = parse_response(data, "server.wgh.test", "A", 7)
    assert answer.rcode == 0 and answer.status == "NOERROR"
    assert answer.addresses == (ip("198.18.2.2"), ip("198.18.2.3"))
    assert answer.ttl == 30


def test_aaaa_records_and_only_the_asked_type_count():
    query = build_query("server.wgh.test", "AAAA", 9)
    data = _reply(
        query,
        DNSRR(rrname="server.wgh.test.", type="A", rdata="198.18.2.2"),
        DNSRR(rrname="server.wgh.test.", type="AAAA", rdata="2001:2:0:2::2"),
    )
    assert parse_response(data, "server.wgh.test", "AAAA", 9).addresses == (ip("2001:2:0:2::2"),)


def test_cname_chain_is_followed_and_other_names_ignored():
    query = build_query("vpn.wgh.test", "A", 11)
    data = _reply(
        query,
        DNSRR(rrname="vpn.wgh.test.", type="CNAME", rdata="server.wgh.test."),
        DNSRR(rrname="server.wgh.test.", type="A", rdata="198.18.2.100"),
        DNSRR(rrname="other.wgh.test.", type="A", rdata="198.18.9.9"),
    )
    assert parse_response(data, "vpn.wgh.test", "A", 11).addresses == (ip("198.18.2.100"),)


def test_nxdomain_is_an_answer_without_addresses():
    query = build_query("nope.wgh.test", "A", 3)
    answer = parse_response(_reply(query, rcode=3), "nope.wgh.test", "A", 3)
    assert answer.status == "NXDOMAIN" and answer.addresses == ()


def test_a_reply_to_another_query_is_rejected():
    query = build_query("server.wgh.test", "A", 5)
    with pytest.raises(DnsError, match="not a reply"):
        parse_response(_reply(query, id=6), "server.wgh.test", "A", 5)
    with pytest.raises(DnsError, match="not a reply"):
        parse_response(query, "server.wgh.test", "A", 5)  # our own query echoed back (qr=0)


def test_garbage_is_rejected():
    with pytest.raises(DnsError):
        parse_response(b"\x00\x05\x81", "server.wgh.test", "A", 5)


def test_hosts_file_lists_every_address_of_every_name():
    text = hosts_file({"server.wgh.test": (ip("198.18.2.100"), ip("2001:2:0:2::2")), "a.wgh.test": (ip("198.18.1.1"),)})
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["198.18.1.1 a.wgh.test", "198.18.2.100 server.wgh.test", "2001:2:0:2::2 server.wgh.test"]


@pytest.mark.parametrize(
    "text, ok",
    [("server.wgh.test", True), ("a.b", True), ("x-1.example.org", True), ("server", False), ("Server.wgh.test", False),
     ("-a.wgh.test", False), ("a..b", False), ("198.18.1.2", False), ("a." * 127 + "bc", False)],
)
def test_dns_names(text, ok):
    assert is_dns_name(text) is ok


def test_dnsmasq_is_confined():
    argv = dnsmasq_argv("/usr/sbin/dnsmasq", [ip("198.18.1.2"), ip("2001:2:0:1::2")], Path("/tmp/d/hosts"), Path("/tmp/d/log"))
    for option in ("--no-resolv", "--no-hosts", "--bind-interfaces", "--keep-in-foreground", "--port=53", "--conf-file=/dev/null"):
        assert option in argv
    assert [a for a in argv if a.startswith("--listen-address=")] == ["--listen-address=198.18.1.2", "--listen-address=2001:2:0:1::2"]
    assert "--addn-hosts=/tmp/d/hosts" in argv
    assert not any(a.startswith(("--dhcp", "--server", "--interface")) for a in argv)


# --- the format and the plan ------------------------------------------------------

SCENARIO = """\
nodes:
  client: {}
  isp: {router: true, dns: {server.wgh.test: server}}
  server: {}
links:
  - {ends: [client, isp]}
  - {ends: [isp, server]}
wireguard:
  server: {}
  client:
    peers:
      server: {endpoint: "server.wgh.test:51820"}
steps:
  - reresolve: {node: client, every: 1s, stale_after: 3s}
  - stop: {reresolve: client}
"""


def load(text):
    return load_text(textwrap.dedent(text), FILE)


def errors(text):
    with pytest.raises(ScenarioError) as exc:
        load(text)
    return [str(p) for p in exc.value.problems]


def test_dns_endpoint_plans_without_an_address():
    (case,) = load(SCENARIO)
    assert case.spec.nodes["isp"].dns == {"server.wgh.test": "server"}
    assert case.spec.steps[0].reresolve.every == 1.0 and case.spec.steps[0].reresolve.stale_after == 3.0
    plan = build_plan(case.spec, "t00001")
    endpoint = plan.wireguard["client"].peer("server").endpoint
    assert endpoint == EndpointPlan(None, 51820, "server", "server.wgh.test")
    assert str(endpoint) == "server.wgh.test:51820"
    assert plan.initiators() == [("client", "server")]


def test_the_plan_holds_each_servers_records_and_who_asks_which():
    # far serves the name too, but only isp is reachable from client; isp asks itself
    text = SCENARIO.replace("  server: {}\nlinks", "  server: {}\n  far: {dns: {server.wgh.test: server, far.wgh.test: far}}\nlinks")
    text = text.replace("  - {ends: [isp, server]}", "  - {ends: [isp, server]}\n  - {ends: [server, far]}")
    (case,) = load(text)
    plan = build_plan(case.spec, "t00001")
    assert plan.nodes["isp"].dns == {"server.wgh.test": "server"} and plan.nodes["client"].dns == {}
    assert plan.nodes["far"].dns == {"server.wgh.test": "server", "far.wgh.test": "far"}
    assert dns_servers(plan) == ["isp", "far"]
    assert servers_of(plan, "server.wgh.test") == ["isp", "far"] and servers_of(plan, "far.wgh.test") == ["far"]
    assert resolver_for(plan, "client", "server.wgh.test") == ("isp", ip("198.18.1.2"))
    assert resolver_for(plan, "isp", "server.wgh.test") == ("isp", ip("198.18.1.2"))  # its own, on its first address
    assert resolver_for(plan, "server", "far.wgh.test") == ("far", ip("198.18.3.2"))
    assert resolver_for(plan, "client", "far.wgh.test") is None  # far is beyond server, which does not forward
    assert resolver_for(plan, "client", "nobody.wgh.test") is None


def test_reresolve_defaults_are_reresolve_dns_sh():
    (case,) = load(SCENARIO.replace("{node: client, every: 1s, stale_after: 3s}", "{node: client}"))
    assert case.spec.steps[0].reresolve.every == 30.0
    assert case.spec.steps[0].reresolve.stale_after == 135.0


def test_dns_key_must_be_a_dns_name():
    assert errors(SCENARIO.replace("{server.wgh.test: server}", "{Server: server}")) == [
        f"{FILE}:3: nodes.isp.dns.Server: 'Server' is not a DNS name: lowercase letters, digits and '-' in labels joined by dots, e.g. server.wgh.test"
    ]


def test_dns_record_names_an_unknown_node():
    assert errors(SCENARIO.replace("{server.wgh.test: server}", "{server.wgh.test: srv}")) == [
        f"{FILE}:3: nodes.isp.dns.server.wgh.test: unknown node 'srv' (known nodes: client, isp, server)"
    ]


def test_name_nobody_serves():
    assert errors(SCENARIO.replace('"server.wgh.test:51820"', '"vpn.wgh.test:51820"')) == [
        f"{FILE}:12: wireguard.client.peers.server.endpoint: no node serves the DNS name 'vpn.wgh.test': "
        "add `dns: {vpn.wgh.test: <node>}` to the node that runs the DNS server"
    ]


def test_dns_endpoint_needs_a_port():
    assert errors(SCENARIO.replace('"server.wgh.test:51820"', "server.wgh.test")) == [
        f"{FILE}:12: wireguard.client.peers.server.endpoint: an endpoint given by DNS name needs a port, as in wg(8): 'server.wgh.test:51820'"
    ]


def test_dns_server_out_of_reach():
    text = SCENARIO.replace("isp: {router: true, dns: {server.wgh.test: server}}", "isp: {router: true}\n  far: {dns: {server.wgh.test: server}}")
    text = text.replace("  - {ends: [isp, server]}", "  - {ends: [isp, server]}\n  - {ends: [server, far]}")
    assert errors(text) == [
        f"{FILE}:14: wireguard.client.peers.server.endpoint: 'client' cannot reach a DNS server for 'server.wgh.test' "
        "on the underlay (served by far; no route, or behind a NAT)"
    ]


def test_reresolve_needs_a_dns_endpoint():
    assert errors(SCENARIO.replace('"server.wgh.test:51820"', "server")) == [
        f"{FILE}:14: steps[0].reresolve.node: no peer of 'client' has an endpoint given by DNS name ('name:port'): there is nothing to re-resolve"
    ]


def test_reresolve_needs_wireguard_and_a_running_one_to_stop():
    text = SCENARIO.replace("reresolve: {node: client, every", "reresolve: {node: isp, every")
    assert errors(text) == [
        f"{FILE}:14: steps[0].reresolve.node: 'isp' has no wireguard section: it has no peers to re-resolve",
        f"{FILE}:15: steps[1].stop.reresolve: 'client' does not re-resolve: start it with `- reresolve: {{node: client}}` first",
    ]


def test_stop_takes_one_thing():
    text = SCENARIO.replace("stop: {reresolve: client}", "stop: {reresolve: client, probe: p}")
    assert any("stop exactly one thing" in e and "reresolve: <node>" in e for e in errors(text))


def test_a_dns_server_cannot_roam():
    text = SCENARIO.replace("  - stop: {reresolve: client}", "  - roam: {node: isp, renumber: true}\n  - stop: {reresolve: client}")
    assert errors(text) == [
        f"{FILE}:15: steps[1].roam.node: 'isp' runs a DNS server (dnsmasq listens on its addresses): it cannot roam"
    ]


def test_dns_node_needs_a_link():
    text = SCENARIO.replace("  server: {}\nlinks", "  server: {}\n  lonely: {dns: {x.wgh.test: server}}\nlinks")
    assert errors(text) == [f"{FILE}:5: nodes.lonely.dns: 'lonely' has no link: its DNS server would have no address to listen on"]


def test_stale_dns_endpoint_is_a_known_cause():
    text = SCENARIO.replace(
        "  - stop: {reresolve: client}",
        "  - stop: {reresolve: client}\n  - ping: {from: client, to: server, expect: fail, cause: stale-dns-endpoint}",
    )
    (case,) = load(text)
    assert case.spec.steps[2].ping.cause == "stale-dns-endpoint"


def test_endpoint_step_accepts_a_dns_name_and_checks_it():
    (case,) = load(SCENARIO + '  - endpoint: {node: client, peer: server, to: "server.wgh.test:51820"}\n')
    assert case.spec.steps[2].endpoint.to == "server.wgh.test:51820"
    assert errors(SCENARIO + '  - endpoint: {node: client, peer: server, to: "other.wgh.test:51820"}\n') == [
        f"{FILE}:16: steps[2].endpoint.to: no node serves the DNS name 'other.wgh.test': "
        "add `dns: {other.wgh.test: <node>}` to the node that runs the DNS server"
    ]
