"""Routes over a LAN: a link with more than two ends (one segment, one subnet), on
which every member is every other's neighbour. Pure: Routing over hand-made ports."""

from ipaddress import ip_address, ip_interface, ip_network

from harness.plan.routing import Port, Routing, RoutingRole


def lan_topology(hosts: int, gateway: bool = False):
    """LAN 0: router r and hosts h1…hN on 10.0.0.0/16 (r is .1); link 1: r — far."""
    roles = {"r": RoutingRole(True), "far": RoutingRole(False)}
    ports = {
        "r": (Port("r", "eth0", (ip_interface("10.0.0.1/16"),), 0), Port("r", "eth1", (ip_interface("198.18.1.1/24"),), 1)),
        "far": (Port("far", "eth0", (ip_interface("198.18.1.2/24"),), 1),),
    }
    members = ["r"]
    for i in range(1, hosts + 1):
        name = f"h{i}"
        roles[name] = RoutingRole(False, gateway="r" if gateway else None)
        ports[name] = (Port(name, "eth0", (ip_interface(f"10.0.{i // 250}.{i % 250 + 2}/16"),), 0),)
        members.append(name)
    link_ends = (tuple(members), ("r", "far"))
    return Routing(roles, link_ends, ports)


def test_a_lan_member_reaches_the_others_directly_and_the_rest_through_its_router():
    routing = lan_topology(3)
    reach = routing.search("h1", 4)
    assert reach["h2"][:3] == (1, routing.ports["h1"][0], "h2")  # on-link: its own neighbour
    assert reach["far"][:3] == (2, routing.ports["h1"][0], "r")
    (route,) = routing.routes_for("h1")
    assert route.destination == ip_network("198.18.1.0/24") and route.gateway == ip_address("10.0.0.1") and route.dev == "eth0"
    # from beyond the router, the whole LAN is one subnet through it
    (back,) = routing.routes_for("far")
    assert back.destination == ip_network("10.0.0.0/16") and back.gateway == ip_address("198.18.1.1")


def test_a_lan_member_with_a_gateway_gets_a_default_route_to_it():
    routing = lan_topology(3, gateway=True)
    (default,) = routing.routes_for("h2")
    assert default.destination == ip_network("0.0.0.0/0") and default.gateway == ip_address("10.0.0.1")


def test_a_host_cannot_carry_transit_across_the_lan():
    routing = lan_topology(2)
    # without the router, far is unreachable from the hosts: they do not forward
    down = Routing(routing.roles, routing.link_ends, routing.ports, frozenset({1}))
    assert "far" not in down.search("h1", 4) and down.routes_for("h1") == []


def test_a_thousand_member_lan_is_searched_once_per_source_not_per_pair():
    routing = lan_topology(1000)
    routes = {node: routing.routes_for(node) for node in routing.ports}
    assert routes["r"] == [] and all(len(r) == 1 for n, r in routes.items() if n != "r")  # far's subnet; far: the LAN's
    # each search crossed the LAN once: every member at distance 1 from a member
    assert sum(1 for d in routing.search("h500", 4).values() if d[0] == 1) == 1000


class OwnSearchRouting(Routing):
    """Every node searches on its own (the reference for the shared LAN search)."""

    def _only_way_out(self, source, ports):
        return None

    def _only_lan(self, source, ports):
        return None


def test_the_shared_lan_search_equals_each_members_own():
    base = lan_topology(30)
    for down in (frozenset(), frozenset({1})):
        fast = Routing(base.roles, base.link_ends, base.ports, down)
        slow = OwnSearchRouting(base.roles, base.link_ends, base.ports, down)
        for node in base.ports:
            assert dict(fast.search(node, 4)) == dict(slow.search(node, 4)), (node, down)
            assert fast.routes_for(node) == slow.routes_for(node)
        assert type(fast.search("h7", 4)) is not dict  # the shared search is the one taken
