"""EV smart charging (SPEC §10): sessions, the four modes, dynamic power sharing, chargers and the setpoint hand-off.

Pure domain code (no Dagster). ``plan_session(problem, session, mode)`` plans a car on the battery's horizon;
``share(...)`` turns a planned power into this cycle's charger current within the connection limit;
``chargers`` drives OCPP 1.6J, Wallbox, Easee, Tesla Wall Connector and generic chargers behind one interface.
"""

from .modes import EvPlan, plan_session
from .session import ChargerLimits, EvSession, EvSessionError, next_local_time
from .sharing import SharingDecision, SharingSettings, SharingState, share

__all__ = [
    "ChargerLimits",
    "EvPlan",
    "EvSession",
    "EvSessionError",
    "SharingDecision",
    "SharingSettings",
    "SharingState",
    "next_local_time",
    "plan_session",
    "share",
]
