"""A NEMWEB-shaped DispatchIS feed on loopback, for end-to-end tests, the latency benchmark and demos.

It serves what the spike watch reads from nemweb.com.au: an IIS-style directory listing of
``/Reports/CURRENT/DispatchIS_Reports/`` (upper-case absolute ``A HREF``, one long line, oldest first) and
zipped C/I/D reports whose ``DISPATCH,PRICE,5`` table carries the full 66 columns in the file's own order
(reference/nemweb.md §1.2, §2). Prices are whatever the caller publishes, so a test can "inject" a $5000/MWh
interval and watch the battery react. Paths are matched case-insensitively, as the real server does.
"""

from __future__ import annotations

import io
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

from .localhttp import serve_in_thread, stop_server

NEM = pd.Timedelta(hours=10)
REGIONS = ("NSW1", "QLD1", "SA1", "TAS1", "VIC1")
FOLDER = "/Reports/CURRENT/DispatchIS_Reports/"
_SERVICES = ("RAISE6SEC", "RAISE60SEC", "RAISE5MIN", "RAISEREG", "LOWER6SEC", "LOWER60SEC", "LOWER5MIN", "LOWERREG")
_PRE_AP = ("RAISE6", "RAISE60", "RAISE5MIN", "RAISEREG", "LOWER6", "LOWER60", "LOWER5MIN", "LOWERREG")
PRICE_COLUMNS: tuple[str, ...] = (
    "SETTLEMENTDATE", "RUNNO", "REGIONID", "DISPATCHINTERVAL", "INTERVENTION", "RRP", "EEP", "ROP", "APCFLAG",
    "MARKETSUSPENDEDFLAG", "LASTCHANGED",
    *[f"{s}{c}" for s in _SERVICES for c in ("RRP", "ROP", "APCFLAG")],
    "PRICE_STATUS", "PRE_AP_ENERGY_PRICE", *[f"PRE_AP_{s}_PRICE" for s in _PRE_AP],
    "RAISE1SECRRP", "RAISE1SECROP", "RAISE1SECAPCFLAG", "LOWER1SECRRP", "LOWER1SECROP", "LOWER1SECAPCFLAG",
    "PRE_AP_RAISE1_PRICE", "PRE_AP_LOWER1_PRICE", "CUMUL_PRE_AP_ENERGY_PRICE",
    *[f"CUMUL_PRE_AP_{s}_PRICE" for s in (*_PRE_AP, "RAISE1", "LOWER1")],
    "OCD_STATUS", "MII_STATUS",
)
CASE_COLUMNS = ("SETTLEMENTDATE", "RUNNO", "INTERVENTION", "CASESUBTYPE", "SOLUTIONSTATUS", "SPDVERSION",
                "NONPHYSICALLOSSES", "TOTALOBJECTIVE", "LASTCHANGED")
REGIONSUM_COLUMNS = ("SETTLEMENTDATE", "RUNNO", "REGIONID", "DISPATCHINTERVAL", "INTERVENTION", "TOTALDEMAND",
                     "AVAILABLEGENERATION", "AVAILABLELOAD", "DEMANDFORECAST", "DISPATCHABLEGENERATION")


def _num(x: float) -> str:
    """AEMO style: up to 5 decimals, trailing zeros dropped."""
    text = f"{x:.5f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def dispatch_interval_id(end_nem: pd.Timestamp) -> str:
    """``YYYYMMDD`` of the trading day + period 001-288, period 001 ending 04:05 NEM time."""
    start = end_nem - pd.Timedelta(hours=4, minutes=5)
    period = (start.hour * 60 + start.minute) // 5 + 1
    return f"{start:%Y%m%d}{period:03d}"


def dispatchis_csv(interval_start_utc: pd.Timestamp, prices: dict[str, float], serial: int,
                   published_utc: pd.Timestamp | None = None, intervention: dict[str, float] | None = None) -> str:
    """One DISPATCHIS report (CRLF, C/I/D rows, END OF REPORT footer with the line count)."""
    end_nem = (interval_start_utc + pd.Timedelta(minutes=5) + NEM).tz_localize(None)
    made = ((published_utc or interval_start_utc + pd.Timedelta(seconds=20)) + NEM).tz_localize(None)
    sd = f'"{end_nem:%Y/%m/%d %H:%M:%S}"'
    changed = f'"{(made - pd.Timedelta(seconds=6)):%Y/%m/%d %H:%M:%S}"'
    di = dispatch_interval_id(end_nem)
    lines = [f"C,NEMP.WORLD,DISPATCHIS,AEMO,PUBLIC,{made:%Y/%m/%d},{made:%H:%M:%S},{serial:016d},DISPATCHIS,"
             f"{serial - 1:016d}"]
    lines.append("I,DISPATCH,CASE_SOLUTION,2," + ",".join(CASE_COLUMNS))
    lines.append(f"D,DISPATCH,CASE_SOLUTION,2,{sd},1,0,,0,,0,-1234567.89,{changed}")
    lines.append("I,DISPATCH,PRICE,5," + ",".join(PRICE_COLUMNS))
    rows = [(r, 0, p) for r, p in sorted(prices.items())]
    rows += [(r, 1, p) for r, p in sorted((intervention or {}).items())]
    for region, interv, rrp in sorted(rows, key=lambda t: (t[1], t[0])):
        values = {c: "0" for c in PRICE_COLUMNS}
        values.update({"SETTLEMENTDATE": sd, "RUNNO": "1", "REGIONID": region, "DISPATCHINTERVAL": di,
                       "INTERVENTION": str(interv), "RRP": _num(rrp), "EEP": "0", "ROP": _num(rrp),
                       "LASTCHANGED": changed, "PRICE_STATUS": "FIRM", "PRE_AP_ENERGY_PRICE": _num(rrp),
                       "CUMUL_PRE_AP_ENERGY_PRICE": _num(rrp * 12), "OCD_STATUS": "NOT_OCD",
                       "MII_STATUS": "NOT_MII", "MARKETSUSPENDEDFLAG": "0", "APCFLAG": "0"})
        lines.append("D,DISPATCH,PRICE,5," + ",".join(values[c] for c in PRICE_COLUMNS))
    lines.append("I,DISPATCH,REGIONSUM,9," + ",".join(REGIONSUM_COLUMNS))
    for region in sorted(prices):
        lines.append(f"D,DISPATCH,REGIONSUM,9,{sd},1,{region},{di},0,{_num(6000.5)},{_num(9000)},0,"
                     f"{_num(5990.25)},{_num(5800)}")
    lines.append(f'C,"END OF REPORT",{len(lines) + 1}')
    return "\r\n".join(lines) + "\r\n"


@dataclass(frozen=True)
class Published:
    name: str
    interval_start: pd.Timestamp
    prices: dict[str, float]
    zipped: bytes
    published_utc: pd.Timestamp


class NemwebFeed:
    """A loopback HTTP server with a DispatchIS folder; ``publish()`` adds the next interval's report."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: int = 24) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"NEMWEB feed: host {host!r} is not loopback")
        self.host, self._port, self.keep = host, port, keep
        self.files: list[Published] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._serial = 495_000_000
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the feed first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> NemwebFeed:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                feed._serve(self)

        self._server = serve_in_thread(Handler, self.host, self._port, "nemweb-feed")
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def __enter__(self) -> NemwebFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_interval(self) -> pd.Timestamp:
        """The interval after the last published one (the current wall-clock interval for the first)."""
        with self.lock:
            last = self.files[-1].interval_start if self.files else None
        now = pd.Timestamp.now(tz="UTC").floor("5min")
        return max(now, last + pd.Timedelta(minutes=5)) if last is not None else now

    def publish(self, prices: dict[str, float], interval_start: pd.Timestamp | None = None,
                default_rrp: float = 85.0) -> Published:
        """Publish one interval: ``prices`` by region (other regions get ``default_rrp``)."""
        start = interval_start if interval_start is not None else self.next_interval()
        full = {r: float(prices.get(r, default_rrp)) for r in REGIONS}
        now = pd.Timestamp.now(tz="UTC")
        with self.lock:
            self._serial += 250
            serial = self._serial
        end_nem = (start + pd.Timedelta(minutes=5) + NEM).tz_localize(None)
        stem = f"PUBLIC_DISPATCHIS_{end_nem:%Y%m%d%H%M}_{serial:016d}"
        csv_text = dispatchis_csv(start, full, serial, published_utc=now)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{stem}.CSV", csv_text)
        pub = Published(f"{stem}.zip", start, full, buf.getvalue(), now)
        with self.lock:
            self.files = [f for f in self.files if f.name != pub.name][-(self.keep - 1):] + [pub]
        return pub

    def listing_html(self) -> str:
        with self.lock:
            files = list(self.files)
        title = f"nemweb.com.au - {FOLDER}"
        parts = [f"<html><head><title>{title}</title></head><body><H1>{title}</H1><hr>\r\n\r\n<pre>"
                 '<A HREF="/Reports/CURRENT/">[To Parent Directory]</A><br><br>'
                 f"{'Friday, May 12, 2017 10:56 AM':>38}        &lt;dir&gt; "
                 f'<A HREF="{FOLDER}DUPLICATE/">DUPLICATE</A><br>']
        for f in files:
            when = (f.published_utc + NEM).tz_localize(None)
            stamp = f"{when:%A, %B} {when.day}, {when.year} {when.hour % 12 or 12:>2}:{when:%M %p}"
            parts.append(f"{stamp:>38} {len(f.zipped):>12} <A HREF=\"{FOLDER}{f.name}\">{f.name}</A><br>")
        parts.append("</pre><hr></body></html>")
        return "".join(parts)

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.requests.append(path)
            by_name = {f.name.upper(): f for f in self.files}
        if path.upper().rstrip("/") == FOLDER.upper().rstrip("/"):
            body, ctype, code = self.listing_html().encode(), "text/html", 200
        elif path.upper().startswith(FOLDER.upper()) and path.rsplit("/", 1)[-1].upper() in by_name:
            body, ctype, code = by_name[path.rsplit("/", 1)[-1].upper()].zipped, "application/x-zip-compressed", 200
        else:
            body, ctype, code = b"<html><body>404 - File or directory not found.</body></html>", "text/html", 404
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
