"""Register maps shared by the drivers and the simulators (SPEC §7; reference/devices.md §1, §2).

Sungrow: pymodbus address = vendor document number − 1; input (FC4) and holding (FC3/6/16) are separate
tables; 32-bit values low word first. Sigenergy: document numbers are the wire addresses; plant unit 247;
32-bit values high word first; powers kW×1000, SOC/SOH %×10.
"""

from __future__ import annotations


class SG:
    """Sungrow SH hybrid."""

    WORD_ORDER = "little"
    # input registers (FC4)
    SERIAL = 4989  # UTF-8 x10
    DEVICE_TYPE = 4999
    PV_POWER = 5016  # U32 W
    BATTERY_POWER = 5213  # S32 W, + discharging
    METER_POWER = 5600  # S32 W, + importing
    BDC_RATED = 5627  # U16 0.1 kW
    RUNNING_STATE = 12999
    POWER_FLOW = 13000
    LOAD_POWER = 13007  # S32 W
    EXPORT_POWER = 13009  # S32 W, + exporting
    SOC = 13022  # U16 0.1 %
    SOH = 13023  # U16 0.1 %
    BATTERY_CAPACITY = 13038  # U16 0.1 kWh
    # holding registers (FC3/FC6)
    EMS_MODE = 13049  # 0 self-consumption, 2 forced, 3 external EMS, 4 VPP
    COMMAND = 13050  # 0xAA charge, 0xBB discharge, 0xCC stop
    FORCED_POWER = 13051  # W
    MAX_SOC = 13057  # 0.1 %
    MIN_SOC = 13058  # 0.1 %
    EXPORT_LIMIT = 13073  # W
    OFF_GRID_OPTION = 13074
    HEARTBEAT = 13079  # s
    EXPORT_SWITCH = 13086  # 0xAA on, 0x55 off
    RESERVE = 13099  # whole %
    MAX_CHARGE_POWER = 33046  # 0.01 kW
    MAX_DISCHARGE_POWER = 33047  # 0.01 kW

    MODE_SELF, MODE_FORCED, MODE_EXTERNAL, MODE_VPP = 0, 2, 3, 4
    CMD_CHARGE, CMD_DISCHARGE, CMD_STOP = 0xAA, 0xBB, 0xCC
    ON, OFF = 0xAA, 0x55
    NA_U16, NA_S32 = 0xFFFF, 0x7FFFFFFF


class SIG:
    """Sigenergy plant (unit 247)."""

    WORD_ORDER = "big"
    PLANT_UNIT = 247
    # input registers
    EMS_WORK_MODE = 30003  # 7 = remote EMS
    GRID_POWER = 30005  # S32 kW*1000, + buying
    SOC = 30014  # U16 %*10
    PV_POWER = 30035  # S32
    ESS_POWER = 30037  # S32, + charging, - discharging
    RUNNING_STATE = 30051
    RATED_CHARGE = 30068  # U32
    RATED_DISCHARGE = 30070  # U32
    RATED_CAPACITY = 30083  # U32 kWh*100
    SOH = 30087  # U16 %*10
    # holding registers
    REMOTE_EMS = 40029  # 0/1
    CONTROL_MODE = 40031
    CHARGE_LIMIT = 40032  # U32 kW*1000
    DISCHARGE_LIMIT = 40034  # U32 kW*1000
    PV_LIMIT = 40036  # U32
    EXPORT_LIMIT = 40038  # U32 kW*1000; 0xFFFFFFFE = unlimited
    IMPORT_LIMIT = 40040
    BACKUP_SOC = 40046  # U16 %*10

    MODE_PCS, MODE_STANDBY, MODE_SELF = 0, 1, 2
    MODE_CHARGE_GRID, MODE_CHARGE_PV, MODE_DISCHARGE_PV, MODE_DISCHARGE_ESS = 3, 4, 5, 6
    UNLIMITED = 0xFFFFFFFE
    INVALID = 0xFFFFFFFF
    REMOTE_EMS_WORK_MODE = 7
