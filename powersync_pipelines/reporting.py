"""Human-facing views of a plan: a compact action table and a PNG plot (SOC, battery power, price)."""

from __future__ import annotations

import base64
import io

import pandas as pd


def action_blocks(intervals: pd.DataFrame, tz: str, limit: int = 12) -> pd.DataFrame:
    """Consecutive intervals with the same action merged into blocks (what a person wants to read)."""
    df = intervals
    change = (df["action"] != df["action"].shift()).cumsum()
    rows = []
    for _, grp in df.groupby(change, sort=False):
        start = grp.index[0].tz_convert(tz)
        end = (grp.index[-1] + pd.Timedelta(minutes=5)).tz_convert(tz)
        net_kw = (grp["battery_charge_kw"] - grp["battery_discharge_kw"]).mean()
        rows.append({
            "from": start.strftime("%a %H:%M"),
            "to": end.strftime("%H:%M"),
            "action": grp["action"].iloc[0],
            "battery_kw": round(float(net_kw), 2),
            "soc_end_pct": round(float(grp["soc"].iloc[-1]) * 100, 1),
            "import_price": round(float(grp["import_price"].mean()), 4),
            "export_price": round(float(grp["export_price"].mean()), 4),
        })
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows)


def plan_plot_png(intervals: pd.DataFrame, tz: str, title: str = "", currency: str = "$") -> bytes:
    """SOC, battery power (+ charging, the sign used everywhere) and import/export price over the horizon, on a
    local-time axis labelled with its zone; prices on a symmetric log scale (a spike and a 10 c price both
    readable) with plain tick labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    local = intervals.index.tz_convert(tz).tz_localize(None)
    fig, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True)
    axes[0].plot(local, intervals["soc"] * 100, color="#264653")
    axes[0].set_ylabel("SOC (%)")
    axes[0].set_ylim(0, 100)
    net = intervals["battery_charge_kw"] - intervals["battery_discharge_kw"]
    axes[1].fill_between(local, net.clip(lower=0), step="post", color="#2a9d8f", label="charging (+)")
    axes[1].fill_between(local, net.clip(upper=0), step="post", color="#e76f51", label="discharging (-)")
    axes[1].axhline(0, color="black", lw=0.5)
    axes[1].set_ylabel("battery kW\n(+ charge)")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[2].step(local, intervals["import_price"], where="post", label="import", color="#d62828")
    axes[2].step(local, intervals["export_price"], where="post", label="export", color="#f4a261")
    axes[2].set_ylabel(f"{currency}/kWh")
    axes[2].set_yscale("symlog", linthresh=1.0)
    axes[2].yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axes[2].legend(loc="upper right", fontsize=8)
    axes[2].set_xlabel(f"local time ({tz})")
    axes[2].xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M"))
    for ax in axes:
        ax.grid(True, color="#eee")
    if title:
        axes[0].set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def png_markdown(png: bytes, alt: str = "plan") -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
