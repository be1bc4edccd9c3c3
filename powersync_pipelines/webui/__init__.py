"""The homeowner's page: per site, what the battery does now and next and why, what it saved, and the last
commands, read-only from the history store (``powersync web``, and next to Dagster in ``powersync ui``).

Sign convention everywhere on the page (plots and tables): battery kW is **+ charging** (energy into the battery)
and **- discharging**; grid kW is + importing and - exporting; prices are $/kWh (or £/kWh) of the site's currency.
No Dagster import: the page reads through ``control`` like the Home Assistant bridge does.
"""
