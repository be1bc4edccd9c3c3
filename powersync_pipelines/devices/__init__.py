"""Battery devices: one interface (``BatteryDevice``), drivers per system, simulators to test them against.

``open_device(site, store)`` returns the driver for ``site.battery.kind``; see ``devices/README.md``.
"""

from .base import (
    ACTIONS,
    BatteryDevice,
    CommandRefused,
    CommandResult,
    DeviceError,
    DeviceRejected,
    DeviceUnavailable,
    StaleTelemetry,
    Telemetry,
    Unsupported,
    VerifyError,
)
from .drivers import open_device

__all__ = [
    "ACTIONS",
    "BatteryDevice",
    "CommandRefused",
    "CommandResult",
    "DeviceError",
    "DeviceRejected",
    "DeviceUnavailable",
    "StaleTelemetry",
    "Telemetry",
    "Unsupported",
    "VerifyError",
    "open_device",
]
