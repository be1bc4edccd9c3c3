"""The plan chart (plotly): SOC, battery power and prices over the horizon on one local-time axis.

Battery kW is + charging / - discharging, the same as every table on the page and the Dagster plan plot.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CHARGE_COLOUR, DISCHARGE_COLOUR = "#2a9d8f", "#e76f51"


def plan_figure(intervals: pd.DataFrame, tz: str, now: pd.Timestamp, currency: str = "$") -> go.Figure:
    """Three stacked panels sharing the local-time axis; the current instant is marked."""
    local = intervals.index.tz_convert(tz).tz_localize(None)
    net = (intervals["battery_charge_kw"] - intervals["battery_discharge_kw"]).round(3)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.3, 0.35, 0.35])
    fig.add_trace(go.Scatter(x=local, y=(intervals["soc"] * 100).round(1), name="state of charge (%)",
                             line={"color": "#264653"}, hovertemplate="%{y:.1f} %<extra>SOC</extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=local, y=net.clip(lower=0), name="charging (+ kW)", marker_color=CHARGE_COLOUR,
                         hovertemplate="+%{y:.2f} kW<extra>charging</extra>"), row=2, col=1)
    fig.add_trace(go.Bar(x=local, y=net.clip(upper=0), name="discharging (- kW)", marker_color=DISCHARGE_COLOUR,
                         hovertemplate="%{y:.2f} kW<extra>discharging</extra>"), row=2, col=1)
    unit = f"{currency}/kWh"
    fig.add_trace(go.Scatter(x=local, y=intervals["import_price"].round(4), name=f"import price ({unit})",
                             line={"color": "#d62828", "shape": "hv"},
                             hovertemplate=f"%{{y:.3f}} {unit}<extra>import</extra>"), row=3, col=1)
    fig.add_trace(go.Scatter(x=local, y=intervals["export_price"].round(4), name=f"export price ({unit})",
                             line={"color": "#f4a261", "shape": "hv"},
                             hovertemplate=f"%{{y:.3f}} {unit}<extra>export</extra>"), row=3, col=1)
    marker = now.tz_convert(tz).tz_localize(None)
    if local[0] <= marker <= local[-1]:
        fig.add_vline(x=marker, line_dash="dot", line_color="#555")
    fig.update_yaxes(title_text="SOC (%)", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text="battery kW<br>(+ charge, - discharge)", zeroline=True, row=2, col=1)
    fig.update_yaxes(title_text=unit, tickformat=".2f", row=3, col=1)
    fig.update_xaxes(title_text=f"local time ({tz})", tickformat="%a %H:%M", row=3, col=1)
    fig.update_layout(barmode="relative", bargap=0, height=560, margin={"l": 70, "r": 20, "t": 30, "b": 50},
                      legend={"orientation": "h", "y": 1.06, "x": 0}, hovermode="x unified",
                      plot_bgcolor="white", paper_bgcolor="white")
    fig.update_xaxes(showgrid=True, gridcolor="#eee")
    fig.update_yaxes(showgrid=True, gridcolor="#eee")
    return fig


@cache
def plotly_js() -> str:
    """plotly.js from the installed package: the page works without internet."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()
