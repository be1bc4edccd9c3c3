"""The decision core, between the entry points (``defs/``, ``commands/``) and the domain packages: the planning
cycle, the one clock, the arbiter of who commands each device (with its durable ledger), the restore watch, and
the service registry. Live operation's coordinators live here too: the AEMO spike watch, automations,
curtailment and the TOU tariff sync, each asking the arbiter as its own owner. See ``README.md``."""
