"""Every error the harness raises on purpose shares one root; a device that is gone
reads as DeviceUnavailable whichever backend it is."""

from __future__ import annotations

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from harness.backends import TemplateError
from harness.engines import EngineChoiceError
from harness.errors import BuildError, HarnessError, MissingCapability, ScenarioError, StepTimeout
from harness.net.dnswire import DnsError
from harness.net.nlbatch import BatchError
from harness.net.ping import PingUsageError
from harness.plan.types import PlanError, PlanErrors
from harness.report.inputs import ReportInputError
from harness.results.load import ResultsError
from harness.kernels.select import KernelSpecError
from harness.wg.backends import DeviceUnavailable, WgDevice
from harness.wg.uapi import UapiError


@pytest.mark.parametrize(
    "error",
    [BuildError, MissingCapability, ScenarioError, StepTimeout, DnsError, BatchError, PingUsageError, PlanError, PlanErrors,
     ReportInputError, ResultsError, KernelSpecError, DeviceUnavailable, UapiError, EngineChoiceError, TemplateError],
)
def test_every_harness_error_derives_from_the_root(error):
    assert issubclass(error, HarnessError)


class _Gone(WgDevice):
    backend = "test"

    def __init__(self, error: Exception):
        super().__init__("wgh-x-ns", "wgh0")
        self.error = error

    def _read_status(self):
        raise self.error

    configure = set_private_key = update_peers = set_fwmark = set_listen_port = close = lambda *a, **k: None


@pytest.mark.parametrize("error", [FileNotFoundError(2, "no socket"), ConnectionRefusedError(111, "refused"), NetlinkError(19, "No such device")])
def test_a_gone_device_is_unavailable_with_its_name(error):
    with pytest.raises(DeviceUnavailable, match="test device wgh0 in wgh-x-ns does not answer"):
        _Gone(error).status()


def test_other_errors_are_not_disguised():
    with pytest.raises(ValueError):
        _Gone(ValueError("a bug")).status()
