"""Automation rules and notification channels of a site (``automations:`` and ``notifications:``).

A rule is ``when`` (every trigger must hold) -> ``then`` (actions in order). Triggers and actions are tagged
unions (``kind:`` / ``action:``), so a typo or a missing field is rejected when the sites file loads, with the
site, rule index and field named, instead of silently never firing at 3 am during a price spike.

Units follow the product: prices in $/kWh (GST incl.), SOC in percent *in the file* (people write 20, not
0.2), durations in minutes, powers in kW. Secrets are never in the file: channels name an environment variable.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from ._base import StrictModel

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NotifyEvent = Literal["spike_start", "spike_end", "spike_deferred", "restore_failed", "command_failed",
                      "automation", "automation_failed"]
NOTIFY_EVENTS: tuple[str, ...] = ("spike_start", "spike_end", "spike_deferred", "restore_failed",
                                  "command_failed", "automation", "automation_failed")


# -- triggers ------------------------------------------------------------------------------------------
class TimeWindowTrigger(StrictModel):
    """Local time of day in [start, end); a window may wrap past midnight (22:00-06:00)."""

    kind: Literal["time_window"]
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindowTrigger:
        if self.start == self.end:
            raise ValueError(f"time_window start and end are both {self.start}: the window is empty")
        return self


class PriceTrigger(StrictModel):
    """The current import (or export) price in $/kWh is above / below ``price``."""

    kind: Literal["price_above", "price_below"]
    price: float = Field(ge=-2, le=20)
    which: Literal["import", "export"] = "import"


class SocTrigger(StrictModel):
    """The battery's state of charge (percent) is above / below ``soc_pct``."""

    kind: Literal["soc_above", "soc_below"]
    soc_pct: float = Field(ge=0, le=100)


class SpikeTrigger(StrictModel):
    """The AEMO spike watch started (or ended) a spike event for this site in this evaluation."""

    kind: Literal["spike_start", "spike_end"]


Trigger = Annotated[TimeWindowTrigger | PriceTrigger | SocTrigger | SpikeTrigger, Field(discriminator="kind")]


# -- actions -------------------------------------------------------------------------------------------
class ForceAction(StrictModel):
    """Force charge / discharge for ``minutes`` (15-240, the device's bounds); ``power_kw`` empty = rated."""

    action: Literal["force_charge", "force_discharge"]
    minutes: int = Field(30, ge=15, le=240)
    power_kw: float | None = Field(None, gt=0, le=500)


class SetReserveAction(StrictModel):
    action: Literal["set_reserve"]
    percent: float = Field(ge=0, le=100)


class SimpleAction(StrictModel):
    """Actions without parameters: curtail export, restore it, or end any forced mode."""

    action: Literal["curtail", "restore_curtailment", "restore_normal"]


class NotifyAction(StrictModel):
    action: Literal["notify"]
    message: str = Field(min_length=1, max_length=1000)
    title: str | None = Field(None, max_length=200)
    channels: list[str] | None = None  # channel names; None = every channel of the site


Action = Annotated[ForceAction | SetReserveAction | SimpleAction | NotifyAction, Field(discriminator="action")]


class AutomationRule(StrictModel):
    """One user rule. Fires on the rising edge of ``when`` (all triggers true), at most once per cooldown."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str | None = None
    enabled: bool = True
    when: list[Trigger] = Field(min_length=1)
    then: list[Action] = Field(min_length=1)
    cooldown_minutes: int = Field(15, ge=0, le=24 * 60)

    @model_validator(mode="after")
    def _coherent(self) -> AutomationRule:
        kinds = [t.kind for t in self.when]
        for a, b in (("price_above", "price_below"), ("soc_above", "soc_below")):
            lows = [t for t in self.when if t.kind == b]
            highs = [t for t in self.when if t.kind == a]
            for hi in highs:
                for lo in lows:
                    if getattr(hi, "which", None) == getattr(lo, "which", None) and _level(hi) >= _level(lo):
                        raise ValueError(f"rule {self.id!r}: {a} {_level(hi)} and {b} {_level(lo)} can never "
                                         "both hold")
        if "spike_start" in kinds and "spike_end" in kinds:
            raise ValueError(f"rule {self.id!r}: spike_start and spike_end never happen in the same evaluation")
        forces = [a for a in self.then if isinstance(a, ForceAction)]
        if len(forces) > 1:
            raise ValueError(f"rule {self.id!r}: at most one force_charge/force_discharge action per rule")
        return self


def _level(t: PriceTrigger | SocTrigger) -> float:
    return t.price if isinstance(t, PriceTrigger) else t.soc_pct


def _unique_ids(rules: list[AutomationRule]) -> list[AutomationRule]:
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate automation id(s): {', '.join(dupes)}")
    return rules


AutomationRules = Annotated[list[AutomationRule], AfterValidator(_unique_ids)]


# -- notification channels -----------------------------------------------------------------------------
class _Channel(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    timeout_s: float = Field(5.0, gt=0, le=60)


class LogChannel(_Channel):
    kind: Literal["log"]


class WebhookChannel(_Channel):
    """POST a JSON document to ``url``; ``token_env`` (optional) becomes a bearer token."""

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    token_env: str | None = None


class NtfyChannel(_Channel):
    """ntfy-style: POST the message as the body to ``{url}/{topic}`` with Title/Priority/Tags headers."""

    kind: Literal["ntfy"]
    url: str = Field(pattern=r"^https?://")
    topic: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    priority: int = Field(4, ge=1, le=5)
    token_env: str | None = None


class HomeAssistantChannel(_Channel):
    """Home Assistant REST: POST ``{url}/api/services/notify/{service}`` with a long-lived token."""

    kind: Literal["home_assistant"]
    url: str = Field(pattern=r"^https?://")
    service: str = Field(pattern=r"^[a-z0-9_]+$")  # e.g. mobile_app_pixel_8 (the part after notify.)
    token_env: str


Channel = Annotated[LogChannel | WebhookChannel | NtfyChannel | HomeAssistantChannel, Field(discriminator="kind")]


def _unique_channels(channels: list[LogChannel | WebhookChannel | NtfyChannel | HomeAssistantChannel]) -> list:
    names = [c.name for c in channels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate notification channel name(s): {', '.join(dupes)}")
    return channels


class NotificationSettings(StrictModel):
    """Where a site's notifications go. No channel configured = the log only."""

    channels: Annotated[list[Channel], AfterValidator(_unique_channels)] = Field(
        default_factory=lambda: [LogChannel(kind="log", name="log")])


def check_rule_channels(rules: list[AutomationRule], settings: NotificationSettings) -> list[str]:
    """Problems with notify actions that name channels the site does not have (empty = fine)."""
    known = {c.name for c in settings.channels}
    out = []
    for rule in rules:
        for act in rule.then:
            if isinstance(act, NotifyAction) and act.channels:
                missing = sorted(set(act.channels) - known)
                if missing:
                    out.append(f"automation {rule.id!r}: notify names unknown channel(s) {', '.join(missing)} "
                               f"(site has: {', '.join(sorted(known))})")
    return out


def _channels_known_to_rules(settings: NotificationSettings, info: ValidationInfo) -> NotificationSettings:
    """Cross-check at load: a notify action may only name channels this site defines."""
    rules = info.data.get("automations") or []
    problems = check_rule_channels(rules, settings)
    if problems:
        raise ValueError("; ".join(problems))
    return settings


# The type of ``SiteConfig.notifications`` (declared after ``automations`` so the rules are validated first).
SiteNotifications = Annotated[NotificationSettings, AfterValidator(_channels_known_to_rules)]
