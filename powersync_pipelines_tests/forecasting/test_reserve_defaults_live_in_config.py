"""The spike-reserve defaults live in ``config`` (a site's settings start from them); ``price_mapping`` builds
the rule from a site's config. The two must agree field by field, so a default changed in one place is the
default everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

from powersync_pipelines.config.features import SpikeReserveConfig
from powersync_pipelines.forecasts.price_mapping import SpikeReserveRule, reserve_rule


def test_a_default_site_plans_with_the_default_rule():
    assert reserve_rule(SpikeReserveConfig()) == SpikeReserveRule()


def test_each_site_setting_reaches_its_rule_field():
    cfg = SpikeReserveConfig(weight=0.4, threshold_per_mwh=250.0, quiet_threshold_per_mwh=None, gate=[[500, 3]],
                             episode_gate=[], horizon_hours=12.0, side="import")
    assert reserve_rule(cfg) == SpikeReserveRule(weight=0.4, threshold=250.0, quiet_threshold=None,
                                                 gate=((500.0, 3.0),), episode_gate=(), horizon_hours=12.0,
                                                 side="import")
    assert reserve_rule(cfg.model_copy(update={"enabled": False})).weight == 0.0


def test_config_imports_nothing_from_forecasts():
    import powersync_pipelines.config as config

    for path in Path(config.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert "forecasts" not in module, f"{path.name} imports {module}"
