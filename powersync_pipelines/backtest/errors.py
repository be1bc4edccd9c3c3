"""The one error a backtest raises for inputs it cannot trust.

The CLI prints it on one line and exits 2, the Dagster asset fails with it; so the message always names the
source (file or series) and the problem.
"""

from __future__ import annotations


class BacktestInputError(ValueError):
    """Bad backtest input: a gap, a misaligned or mis-scaled series, an empty window, an unknown format."""
