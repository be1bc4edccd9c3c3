"""One error type for everything that can go wrong between a price provider and the price frame.

The message always names the provider and the problem, because the person reading it is usually an
installer looking at a failed Dagster run, not at the code.
"""

from __future__ import annotations


class PriceDataError(ValueError):
    """A provider's data could not be fetched or trusted.

    ``provider`` (amber, aemo, octopus, ...) and ``problem`` (a short machine-friendly tag such as
    ``token_invalid``, ``html_instead_of_json``, ``timeout``, ``truncated_zip``, ``wrong_units``) are kept
    separately so callers (the asset check, ``fetch_with_fallback``) can report and branch on them.
    """

    def __init__(self, provider: str, problem: str, detail: str = "") -> None:
        self.provider = provider
        self.problem = problem
        self.detail = detail
        text = f"{provider}: {problem.replace('_', ' ')}"
        super().__init__(f"{text}: {detail}" if detail else text)
