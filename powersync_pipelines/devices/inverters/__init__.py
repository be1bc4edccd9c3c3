"""AC-coupled PV inverters that can be curtailed to zero export and restored (SPEC §8).

One module per brand, each with its register map / endpoints and quirks in its docstring; ``open_inverter``
picks the driver from ``ac_inverter.brand``; ``control`` adds saved state, locking and command records.
"""

from .base import AcInverter
from .brands import BRANDS, open_inverter

__all__ = ["BRANDS", "AcInverter", "open_inverter"]
