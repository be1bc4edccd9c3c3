"""The HTML of the homeowner's page (server-rendered; the chart is drawn by plotly.js in the browser).

Every number carries its unit, every time is local with the zone named, and battery kW is + charging."""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd

from .charts import plan_figure
from .model import SiteView, _local

SIGN_NOTE = ("Battery power is <b>+ when charging</b> (energy into the battery) and <b>− when discharging</b>, in "
             "the chart and in every table; prices are per kWh including the network charges the plan uses.")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2733}
header{background:#264653;color:#fff;padding:14px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85;font-size:14px}main{padding:18px 28px;max-width:1280px}
section.site{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:18px 22px;
margin-bottom:22px}h2{margin:0 0 4px;font-size:20px}.sub{color:#5b6672;font-size:13px;margin-bottom:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px;margin:12px 0}
.card{background:#f8fafb;border:1px solid #e3e8ec;border-radius:8px;padding:10px 12px}
.card .k{font-size:12px;color:#5b6672;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600;margin-top:2px}.card .n{font-size:12.5px;color:#5b6672;margin-top:2px}
.why{background:#eef6f5;border-left:4px solid #2a9d8f;padding:10px 14px;border-radius:4px;margin:10px 0}
.alert{background:#fdecea;border-left:4px solid #d62828}.pos{color:#1b7f4b}.neg{color:#b3261e}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin:6px 0 14px}
th,td{padding:5px 8px;border-bottom:1px solid #e8ecef;text-align:left}th{background:#f1f4f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}h3{font-size:15px;margin:16px 0 4px}
a{color:#1d6fa5}.note{font-size:12.5px;color:#5b6672}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _money(x: float | None, cur: str) -> str:
    """A saving in words: positive saves, negative costs more (never a bare minus sign)."""
    if x is None or pd.isna(x):
        return "—"
    return f"saved {cur}{x:.2f}" if x >= 0 else f"cost {cur}{-x:.2f} more"


def _kw(x: float) -> str:
    return f"{x:+.2f} kW" if abs(x) >= 0.005 else "0.00 kW"


def _card(key: str, value: str, note: str = "", cls: str = "") -> str:
    return (f'<div class="card {cls}"><div class="k">{_esc(key)}</div><div class="v">{value}</div>'
            f'<div class="n">{note}</div></div>')


def _blocks_table(view: SiteView) -> str:
    if view.blocks.empty:
        return '<p class="note">No plan stored yet.</p>'
    cur = view.currency
    rows = "".join(
        f"<tr><td>{_esc(b['from'])}</td><td>{_esc(b['to'])}</td><td>{_esc(b['action'].replace('_', ' ').lower())}"
        f"</td><td class='num'>{_kw(b['battery_kw'])}</td><td class='num'>{b['soc_end_pct']:.1f} %</td>"
        f"<td class='num'>{b['import_price']:.3f} {cur}/kWh</td><td class='num'>{b['export_price']:.3f} {cur}/kWh"
        "</td></tr>" for _, b in view.blocks.iterrows())
    return ("<table id='next-actions-" + _esc(view.site.id) + "' class='actions'><thead><tr><th>from</th><th>to</th>"
            "<th>action</th><th class='num'>battery (+ charge)</th><th class='num'>SOC at end</th>"
            "<th class='num'>import price</th><th class='num'>export price</th></tr></thead><tbody>"
            f"{rows}</tbody></table>")


def _commands_table(view: SiteView) -> str:
    if view.commands.empty:
        return '<p class="note">No command has been sent yet.</p>'
    rows = []
    for _, c in view.commands.iterrows():
        try:
            params = json.loads(c["params"]) if isinstance(c["params"], str) else {}
        except ValueError:
            params = {}
        kw = params.get("power_kw") if isinstance(params, dict) else None
        what = c["command"].replace("apply:", "plan slot: ").replace("_", " ").lower()
        if isinstance(kw, int | float):
            what += f" at {kw:.2f} kW"
        outcome = c["outcome"] + (f" ({c['error']})" if isinstance(c["error"], str) and c["error"] else "")
        cls = "pos" if c["outcome"] == "ok" else "neg"
        owner = c["owner"] if isinstance(c["owner"], str) else "—"
        rows.append(f"<tr><td>{_esc(_local(c['issued_at'], view.tz, '%a %d %b %H:%M:%S'))}</td><td>{_esc(owner)}"
                    f"</td><td>{_esc(what)}</td><td class='{cls}'>{_esc(outcome)}</td></tr>")
    return ("<table class='commands'><thead><tr><th>sent (local)</th><th>by</th><th>what the battery was told</th>"
            "<th>outcome</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def site_section(view: SiteView, dagster_url: str | None) -> tuple[str, dict[str, Any] | None]:
    """One site's section and its chart's plotly JSON (None without a plan)."""
    st, cur, sid, tz = view.status, view.currency, view.site.id, view.site.timezone
    now_local = view.now.tz_convert(tz).strftime("%a %d %b %Y %H:%M")
    action = (st["action"] or "no plan").replace("_", " ").lower()
    power = (st["power_kw"] or 0.0) * (1 if st["action"] == "CHARGE" else -1 if st["action"] == "EXPORT" else 0)
    if st["action"] == "SELF_CONSUMPTION" and not view.intervals.empty:
        row = view.intervals.loc[view.intervals.index <= view.now]
        r = row.iloc[-1] if not row.empty else view.intervals.iloc[0]
        power = float(r["battery_charge_kw"] - r["battery_discharge_kw"])
    until = _local(st["slot_until"], view.tz, "%H:%M")
    imp, exp = view.price_now
    soc = f"{st['soc'] * 100:.0f} %" if st["soc"] is not None else "—"
    nxt = view.blocks.iloc[1] if len(view.blocks) > 1 else None
    holder = st["holder"] if st["holder"] != "none" else "nobody (battery's own mode)"
    held = _local(st["held_until"], view.tz, "%a %d %b %H:%M")
    cards = [
        _card("now", _esc(action), f"{_kw(power)} until {until}" if until else ""),
        _card("next", _esc(nxt["action"].replace("_", " ").lower()) if nxt is not None else "—",
              f"{_kw(nxt['battery_kw'])} from {_esc(nxt['from'])}" if nxt is not None else ""),
        _card("battery", soc, "state of charge read back"
              + (f"; plan starts at {view.plan['soc_initial'] * 100:.0f} %" if view.plan else "")),
        _card("price now", f"{imp:.3f} {cur}/kWh" if imp is not None else "—",
              f"export pays {exp:.3f} {cur}/kWh" if exp is not None else ""),
        _card("who holds the battery", _esc(holder), f"until {held}" if held else ""),
    ]
    saving_cards = [_card(label, _money(val, cur), "measured against the same home without a battery"
                          if val is not None else "no priced telemetry in this period yet",
                          "pos" if (val or 0) >= 0 else "neg") for label, val in view.savings.items()]
    if view.plan:
        p = view.plan
        saving_cards.append(_card("plan, next 24 h", _money(p["savings_24h"], cur),
                                  f"48 h: {_money(p['baseline_cost'] - p['cost'], cur)} (plan {p['plan_id']})"))
    alerts = []
    if view.spike is not None:
        s = view.spike
        alerts.append(f"<div class='why alert'><b>Price spike {_esc(s['status'])}</b> since "
                      f"{_esc(_local(s['since'], view.tz))}: peak {s['peak_rrp']:.0f} $/MWh (threshold "
                      f"{s['threshold']:.0f} $/MWh); response: {_esc(s['response'])}.</div>")
    curtail = ("solar export <b>curtailed</b>" + (f" since {_esc(_local(view.curtailed_since, view.tz))}"
               if view.curtailed_since is not None else "") if view.curtailed else "solar export not curtailed")
    spike = "no price spike" if view.spike is None else f"spike {view.spike['status']}"
    links = ""
    if dagster_url:
        base = dagster_url.rstrip("/")
        links = (f"<p class='note'>Behind this page in Dagster: <a href='{base}/assets/battery_schedule'>the plan "
                 f"(battery_schedule)</a> · <a href='{base}/assets/battery_commands'>the commands "
                 f"(battery_commands)</a> · <a href='{base}/runs'>all runs</a> · "
                 f"<a href='{base}/overview/automation'>schedules and sensors</a></p>")
    replay = ("<p class='note'>Replayed prices: the plan runs on the replay's clock (shown above); commands, "
              "holds and savings are on the real clock.</p>" if view.site.provider.kind == "replay" else "")
    stale = "" if st["plan_current"] or view.plan is None else (
        f"<p class='note'>The latest plan starts at {_esc(_local(view.intervals.index[0], view.tz))}, not at the "
        "current instant: the pipeline has not planned this slot yet.</p>")
    body = (f"<section class='site' id='site-{_esc(sid)}'><h2>{_esc(sid)}</h2>"
            f"<div class='sub'>{now_local} local time ({_esc(tz)}) · {_esc(view.site.battery.kind)} "
            f"{view.site.battery.capacity_kwh:g} kWh, ±{view.site.battery.max_charge_kw:g} kW · {spike} · {curtail}"
            f"</div>{replay}{''.join(alerts)}<div class='why'><b>Why:</b> {_esc(view.reason())}</div>"
            f"<div class='cards'>{''.join(cards)}</div><h3>Savings against no battery</h3>"
            f"<div class='cards'>{''.join(saving_cards)}</div>{stale}"
            f"<h3>Plan: state of charge, battery power and prices (local time, {_esc(tz)})</h3>"
            f"<div class='plan-chart' id='chart-{_esc(sid)}' style='min-height:560px'></div>"
            f"<h3>Next actions (local time, {_esc(tz)})</h3>{_blocks_table(view)}"
            f"<h3>Last commands</h3>{_commands_table(view)}{links}</section>")
    fig = None
    if not view.intervals.empty:
        fig = json.loads(plan_figure(view.intervals, tz, view.now, cur).to_json())
    return body, fig


def render(views: list[SiteView], dagster_url: str | None) -> str:
    """The whole page: one section per site, their charts drawn once plotly.js has loaded."""
    parts, charts = [], {}
    for v in views:
        body, fig = site_section(v, dagster_url)
        parts.append(body)
        if fig is not None:
            charts[f"chart-{v.site.id}"] = fig
    script = ("<script>const charts=" + json.dumps(charts).replace("</", "<\\/") + ";for(const [id,f] of "
              "Object.entries(charts)){Plotly.newPlot(id,f.data,f.layout,{responsive:true,displaylogo:false})"
              ".then(()=>document.getElementById(id).dataset.rendered='1');}</script>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>PowerSync: your battery</title>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style>"
            "<script src='/static/plotly.js'></script></head><body><header><h1>PowerSync · your battery</h1>"
            f"<p>{SIGN_NOTE}</p></header><main>{''.join(parts) or '<p>No sites configured.</p>'}</main>"
            f"{script}</body></html>")
