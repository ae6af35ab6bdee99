"""harness.net.impair: the tc commands for a direction's conditions, the
classification of tc's errors, and the read-back check (pure parts, no root)."""

import pytest

from harness.errors import BuildError, MissingCapability
from harness.net import impair
from harness.net.impair import check_read_back, classify_failure, is_unknown_qdisc, tc_commands
from harness.plan.conditions import egress
from harness.plan.types import Conditions, GilbertElliottLoss
from harness.scenario.conditions import Impairment
from harness.scenario.model import LinkSpec

RESET = [["qdisc", "replace", "dev", "eth0", "root", "pfifo"], ["qdisc", "del", "dev", "eth0", "root"]]
NETEM_ROOT = ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "netem"]


def shaped(conditions: Conditions, mtu: int = 1500) -> list[list[str]]:
    """The commands after the reset (which every plan starts with)."""
    commands = tc_commands("eth0", conditions, mtu)
    assert commands[:2] == RESET
    return commands[2:]


# --- planning -------------------------------------------------------------------------


def test_nothing_to_do_only_resets_the_device():
    assert tc_commands("eth0", None, 1500) == RESET
    assert tc_commands("eth0", Conditions(), 1500) == RESET


def test_reset_is_never_a_replace_of_the_real_qdisc():
    # replacing a qdisc of another kind fails, one of the same kind keeps stale options:
    # after the reset, the real qdiscs are always added fresh
    for command in shaped(Conditions(delay=0.02, rate=1e7)):
        assert command[:2] == ["qdisc", "add"]


def test_delay_is_one_way_with_unit():
    assert shaped(Conditions(delay=0.02)) == [NETEM_ROOT + ["delay", "20ms"]]


def test_sub_millisecond_and_fractional_delays_keep_their_precision():
    assert shaped(Conditions(delay=0.0125))[0][-1] == "12500us"
    assert shaped(Conditions(delay=0.0000015))[0][-1] == "1.5us"  # tc has no 'ns'
    assert shaped(Conditions(delay=2.0))[0][-1] == "2000ms"


def test_jitter_with_correlation_and_distribution():
    conditions = Conditions(delay=0.02, jitter=0.005, delay_correlation=25, distribution="normal")
    assert shaped(conditions) == [NETEM_ROOT + ["delay", "20ms", "5ms", "25%", "distribution", "normal"]]


def test_uniform_distribution_is_netems_default_and_has_no_table():
    conditions = Conditions(delay=0.02, jitter=0.005, distribution="uniform")
    assert shaped(conditions) == [NETEM_ROOT + ["delay", "20ms", "5ms"]]


def test_delay_correlation_without_jitter_has_no_effect_and_is_left_out():
    assert shaped(Conditions(delay=0.02, delay_correlation=25)) == [NETEM_ROOT + ["delay", "20ms"]]


def test_loss_with_correlation():
    assert shaped(Conditions(loss=1, loss_correlation=25)) == [NETEM_ROOT + ["loss", "1%", "25%"]]
    assert shaped(Conditions(loss=0.1)) == [NETEM_ROOT + ["loss", "0.1%"]]


def test_zero_values_are_left_out():
    conditions = Conditions(delay=0.01, jitter=0, loss=0, loss_correlation=0, duplicate=0, corrupt=0, reorder=0)
    assert shaped(conditions) == [NETEM_ROOT + ["delay", "10ms"]]
    # only zeros: netem is not needed at all
    assert shaped(Conditions(delay=0, loss=0)) == []


def test_percent_is_never_written_with_an_exponent():
    assert shaped(Conditions(loss=0.00001))[0][-1] == "0.00001%"


def test_gilbert_elliott_in_tcs_order_p_r_1h_1k():
    ge = GilbertElliottLoss(p=1, r=10, bad_loss=80, good_loss=0.5)
    assert shaped(Conditions(gilbert_elliott=ge)) == [NETEM_ROOT + ["loss", "gemodel", "1%", "10%", "80%", "0.5%"]]


def test_gilbert_elliott_trailing_zero_good_loss_is_tcs_default():
    ge = GilbertElliottLoss(p=1, r=10)  # bad state loses everything, good state nothing
    assert shaped(Conditions(gilbert_elliott=ge)) == [NETEM_ROOT + ["loss", "gemodel", "1%", "10%", "100%"]]


def test_reorder_duplicate_corrupt():
    conditions = Conditions(delay=0.01, reorder=5, duplicate=1, corrupt=0.1)
    assert shaped(conditions) == [NETEM_ROOT + ["delay", "10ms", "reorder", "5%", "duplicate", "1%", "corrupt", "0.1%"]]


def test_queue_becomes_netems_limit():
    assert shaped(Conditions(delay=0.01, queue=50)) == [NETEM_ROOT + ["limit", "50", "delay", "10ms"]]


def test_rate_alone_is_a_root_token_bucket():
    # burst: 10 ms at 20 Mbit/s = 25000 B (> 2 MTU); limit: 50 ms at 20 Mbit/s = 125000 B
    assert shaped(Conditions(rate=20e6)) == [
        ["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "tbf", "rate", "20000000bit", "burst", "25000b", "limit", "125000b"]
    ]


def test_slow_rate_bucket_holds_two_packets_and_queues_a_few():
    # 500 kbit/s: 10 ms is 625 B and 50 ms only 3125 B, less than the floors
    (command,) = shaped(Conditions(rate=5e5), mtu=1500)
    assert command[-6:] == ["rate", "500000bit", "burst", "3000b", "limit", "6000b"]


def test_rate_queue_in_packets_of_the_mtu():
    (command,) = shaped(Conditions(rate=20e6, queue=10), mtu=1400)
    assert command[-2:] == ["limit", "14000b"]


def test_rate_with_netem_hangs_a_token_bucket_under_netem():
    assert shaped(Conditions(delay=0.04, loss=1, rate=20e6)) == [
        NETEM_ROOT + ["delay", "40ms", "loss", "1%"],
        ["qdisc", "add", "dev", "eth0", "parent", "1:1", "handle", "2:", "tbf", "rate", "20000000bit", "burst", "25000b", "limit", "125000b"],
    ]


def test_with_a_rate_netem_holds_the_delay_line_and_the_buckets_queue():
    # 1 Gbit/s over 100 ms is ~8300 packets in flight: netem's default 1000 would drop
    netem, tbf = shaped(Conditions(delay=0.1, rate=1e9, queue=100))
    assert netem[8:10] == ["limit", str(2 * 8334 + 100)]
    assert tbf[-2:] == ["limit", "150000b"]
    # at a slow rate netem's default is plenty: left out
    netem, _ = shaped(Conditions(delay=0.04, rate=20e6, queue=50))
    assert "limit" not in netem


def test_queue_alone_is_a_fifo():
    assert shaped(Conditions(queue=20)) == [["qdisc", "add", "dev", "eth0", "root", "handle", "1:", "pfifo", "limit", "20"]]


def test_a_links_direction_after_towards_override():
    link = LinkSpec(ends=("a", "b"), delay=0.02, loss=2, towards={"b": Impairment(loss=5)})
    towards_b = egress(link, "b")
    assert shaped(towards_b) == [NETEM_ROOT + ["delay", "20ms", "loss", "5%"]]


def test_every_command_is_plain_words_for_tc_batch():
    conditions = Conditions(delay=0.02, jitter=0.002, loss=2, rate=1e7, queue=30)
    for command in tc_commands("eth0", conditions, 1500):
        assert all(word and " " not in word and "\n" not in word for word in command)


class _NoNamespace:
    netns_path = ""  # a node without a namespace of its own would be the host

    def run(self, argv, *, timeout=30.0, input=None):
        raise AssertionError("tc must not run on the host")


def test_apply_refuses_the_hosts_own_namespace():
    with pytest.raises(ValueError, match="never the host"):
        impair.apply(_NoNamespace(), "eth0", Conditions(delay=0.01), 1500)
    with pytest.raises(ValueError):
        impair.read_back(None, "eth0")
    with pytest.raises(ValueError):
        impair.read_back(_NoNamespace(), "eth0")


# --- tc's errors ----------------------------------------------------------------------

NETEM_PLAN = tc_commands("eth0", Conditions(delay=0.01, rate=1e7), 1500)


@pytest.mark.parametrize(
    "stderr",
    [
        "Error: Specified qdisc kind is unknown.\nCommand failed -:3\n",
        "Error: Specified qdisc not found.\nCommand failed -:3\n",
        "RTNETLINK answers: No such file or directory\nCommand failed -:3\n",
        'Unknown qdisc "netem", hence option "delay" is unparsable\nCommand failed -:3\n',
    ],
)
def test_missing_netem_is_a_missing_capability_naming_the_vm(stderr):
    assert is_unknown_qdisc(stderr)
    error = classify_failure(stderr, NETEM_PLAN, "eth0")
    assert isinstance(error, MissingCapability)
    assert "sch_netem" in str(error) and "wgh vm --kernel 6.1" in str(error)
    assert stderr.splitlines()[0] in str(error)  # tc's words are kept


def test_missing_netem_without_a_line_number_still_blames_netem():
    error = classify_failure("Error: Specified qdisc kind is unknown.\n", NETEM_PLAN, "eth0")
    assert isinstance(error, MissingCapability) and "wgh vm" in str(error)


def test_missing_tbf_names_tbf():
    plan = tc_commands("eth0", Conditions(rate=1e7), 1500)
    error = classify_failure("Error: Specified qdisc kind is unknown.\nCommand failed -:3\n", plan, "eth0")
    assert isinstance(error, MissingCapability)
    assert "sch_tbf" in str(error) and "netem" not in str(error)


def test_missing_distribution_table_is_not_a_missing_module():
    stderr = "No distribution data for normal (/usr/lib/x86_64-linux-gnu/tc//normal.dist: No such file or directory)\nCommand failed -:3\n"
    assert not is_unknown_qdisc(stderr)
    assert isinstance(classify_failure(stderr, NETEM_PLAN, "eth0"), BuildError)


def test_other_errors_are_build_errors_with_tcs_text_and_the_command():
    stderr = "Error: Invalid qdisc name: must match existing qdisc.\nCommand failed -:4\n"
    error = classify_failure(stderr, NETEM_PLAN, "eth0")
    assert isinstance(error, BuildError)
    assert "Invalid qdisc name" in str(error)
    assert "tc qdisc add dev eth0 parent 1:1 handle 2: tbf" in str(error)


def test_device_errors_are_build_errors():
    error = classify_failure('Cannot find device "eth9"\nCommand failed -:1\n', NETEM_PLAN, "eth9")
    assert isinstance(error, BuildError) and "eth9" in str(error)


# --- read-back ------------------------------------------------------------------------

# as the 6.1 kernel and iproute2 6.1 print them
NOQUEUE = {"kind": "noqueue", "handle": "0:", "root": True, "refcnt": 2, "options": {}}
NETEM = {
    "kind": "netem", "handle": "1:", "root": True, "refcnt": 3,
    "options": {"limit": 1000, "delay": {"delay": 0.04, "jitter": 0, "correlation": 0},
                "loss-random": {"loss": 0.1, "correlation": 0}, "ecn": False, "gap": 0},
}  # fmt: skip
TBF_CHILD = {"kind": "tbf", "handle": "2:", "parent": "1:1", "options": {"rate": 2500000, "burst": 10000, "lat": 46000}}
TBF_ROOT = {"kind": "tbf", "handle": "1:", "root": True, "refcnt": 3, "options": {"rate": 2500000, "burst": 10000, "lat": 46000}}


def test_read_back_accepts_what_was_planned():
    assert check_read_back([NETEM, TBF_CHILD], Conditions(delay=0.04, loss=10, rate=20e6)) is None
    assert check_read_back([TBF_ROOT], Conditions(rate=20e6)) is None
    assert check_read_back([NOQUEUE], None) is None
    assert check_read_back([], Conditions()) is None


def test_read_back_notices_a_missing_or_misplaced_qdisc():
    assert "netem 1: is missing" in check_read_back([NOQUEUE], Conditions(delay=0.04, loss=10))
    assert "tbf 2: is missing" in check_read_back([NETEM], Conditions(delay=0.04, loss=10, rate=20e6))
    assert "tbf 1: is missing" in check_read_back([NETEM], Conditions(rate=20e6))
    assert "is not the root" in check_read_back([dict(TBF_ROOT, root=False)], Conditions(rate=20e6))


def test_read_back_notices_wrong_values():
    assert "rate" in check_read_back([TBF_ROOT], Conditions(rate=10e6))
    assert "delay" in check_read_back([NETEM, TBF_CHILD], Conditions(delay=0.02, loss=10, rate=20e6))
    assert "loss" in check_read_back([NETEM], Conditions(delay=0.04, loss=1))


def test_read_back_after_clearing_wants_nothing_left():
    assert "netem" in check_read_back([NETEM], None)
    assert "tbf" in check_read_back([TBF_ROOT], Conditions())


# --- the link step ----------------------------------------------------------------------


def test_the_link_step_hands_the_network_plan_conditions():
    from harness.plan.network import build_plan
    from harness.scenario.model import ScenarioSpec
    from harness.scenario.steps.timeline import LinkArgs
    from harness.engine.fake import FakeNetwork
    from harness.steps.actions import link

    spec = ScenarioSpec.model_validate({"nodes": {"a": {}, "b": {}}, "links": [{"ends": ["a", "b"], "delay": "20ms"}]})
    network = FakeNetwork(build_plan(spec, "t00001"))

    def now():
        return {(0, node): network.engine.conditions(0, node) for node in ("a", "b")}

    args = LinkArgs.model_validate({"name": "a-b", "towards": {"b": {"gilbert_elliott": {"p": 1, "r": 10}}}})
    result = link(network, 0, args)
    ge = GilbertElliottLoss(1.0, 10.0)
    assert now() == {(0, "a"): Conditions(delay=0.02, gilbert_elliott=ge), (0, "b"): Conditions(delay=0.02)}
    assert result.title == (
        "link a-b: towards b: delay=0.02 gilbert_elliott={'p': 1.0, 'r': 10.0, 'bad_loss': 100.0, 'good_loss': 0.0}; "
        "towards a: delay=0.02"
    )
    assert shaped(now()[(0, "a")]) == [NETEM_ROOT + ["delay", "20ms", "loss", "gemodel", "1%", "10%", "100%"]]
    link(network, 1, LinkArgs(name="a-b", clear=True))
    assert now() == {(0, "a"): None, (0, "b"): None}
    assert network.events[-1][1] == "link a-b towards b: clean; towards a: clean"
