"""JSON over HTTP for the cloud and local chargers: timeouts, clear one-line errors, no secrets in them."""

from __future__ import annotations

from typing import Any

import httpx

from ...devices.base import DeviceRejected, DeviceUnavailable


class JsonHttp:
    """One ``httpx.Client`` per charger; ``request`` returns the parsed JSON (or None for an empty body)."""

    def __init__(self, name: str, base_url: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, json: Any = None,
                auth: tuple[str, str] | None = None, lenient_json: bool = False) -> tuple[int, Any]:
        try:
            r = self.client.request(method, path, headers=headers, json=json, auth=auth)
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"{self.name}: {method} {path}: {type(exc).__name__}: {exc}") from None
        if r.status_code == 429:
            raise DeviceRejected(f"{self.name}: {method} {path} answered 429 (rate limited; retry after "
                                 f"{r.headers.get('Retry-After', '?')} s)", 429)
        if r.status_code >= 400:
            raise DeviceRejected(f"{self.name}: {method} {path} answered HTTP {r.status_code}", r.status_code)
        if not r.content:
            return r.status_code, None
        try:
            return r.status_code, r.json()
        except ValueError:
            if lenient_json:  # some firmware drops the closing brace
                import json as _json

                try:
                    return r.status_code, _json.loads(r.text.strip() + "}")
                except ValueError:
                    pass
            raise DeviceRejected(f"{self.name}: {method} {path} answered a body that is not JSON: {r.text[:80]!r}") from None

    def close(self) -> None:
        self.client.close()
