"""Home Assistant over MQTT discovery: every site as an HA device with its state, plan and forecasts as
entities, and HA's buttons, numbers and selects driving the same service registry as ``powersync service``.

``discovery`` builds the configs (pure), ``state`` reads what to publish from the history, ``bridge`` is the
MQTT client. No Dagster here: ``commands/ha.py`` runs the bridge from the CLI.
"""
