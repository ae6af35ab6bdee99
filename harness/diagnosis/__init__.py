"""Why a check failed. WireGuard says nothing when a peer is unreachable, so on failure
the harness gathers each side's view (handshake, endpoint, counters, AllowedIPs),
probes the underlay, NAT tables and path MTU, and names a likely cause by a stable code.

- `causes`: the cause codes (pure data; a file's `cause:` is checked against them)
- `result`: `Diagnosis`, the evidence lines and the named cause
- `tunnel`: one tunnel hop (`diagnose_tunnel`) and the underlay (`diagnose_underlay`)
- `path`: a check through the tunnel, hop by hop through hubs (`diagnose_path`)
- `cryptokey`: AllowedIPs evidence (receiver's drops, routing loops)
- `mtu`: path MTU measurement and the black-hole verdict
"""

from harness.diagnosis.causes import CAUSES
from harness.diagnosis.result import Diagnosis

__all__ = ["CAUSES", "Diagnosis"]
