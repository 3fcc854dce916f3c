"""What the pages and ``/api/`` show, built once here so the two always agree: the store's
read-only views joined with what only a running coordinator knows (who is connected, which
version each Pi runs, its platform)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from federated.store_views import FleetViews

# Without a running coordinator's links, a device whose last poll is this recent counts as
# online (a long-poll answers idle every few seconds; the live window is 20 s by default).
ONLINE_SECONDS = 60.0


@dataclass(frozen=True)
class LinkInfo:
    """What the running coordinator's broker knows of one device."""

    live: bool
    deployed: int | None
    platform: Mapping[str, str] | None


# device id -> LinkInfo, from the running coordinator (None: a stopped fleet, `pifed dashboard`)
LinkSource = Callable[[], Mapping[int, LinkInfo]]


class FleetData:
    """The dashboard's data: JSON-able dicts, the same for a page and its ``/api/`` twin."""

    def __init__(
        self,
        views: FleetViews,
        links: LinkSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.views = views
        self._links = links
        self._clock = clock

    @property
    def live(self) -> bool:
        """Whether a running coordinator feeds this dashboard (else: the store only)."""
        return self._links is not None

    def devices(self) -> list[dict[str, Any]]:
        """Every enrolled device with state, deployed version and platform."""
        links = self._links() if self._links else {}
        now = self._clock()
        out = []
        for d in self.views.devices():
            link = links.get(d["id"])
            if d["revoked"] is not None:
                state = "revoked"
            elif link is not None:
                state = "online" if link.live else "offline"
            elif self._links is None and d["last_seen"] and now - d["last_seen"] <= ONLINE_SECONDS:
                state = "online"
            else:
                state = "offline"
            out.append(
                {
                    **d,
                    "state": state,
                    # None: not known (the Pi has not polled this coordinator, or it is stopped)
                    "deployed": link.deployed if link else None,
                    "platform": dict(link.platform) if link and link.platform else None,
                }
            )
        return out

    def fleet(self) -> dict[str, Any]:
        """The fleet at a glance: deployed version, device counts, rounds, the live round."""
        devices = self.devices()
        states = {
            s: sum(d["state"] == s for d in devices) for s in ("online", "offline", "revoked")
        }
        return {
            "deployed_version": self.views.deployed_version(),
            "coordinator_running": self.live,
            "devices": devices,
            "device_states": states,
            "rounds": self.views.round_count(),
            "live_round": self.views.live_round(),
        }

    def versions(self) -> dict[str, Any]:
        """Every version and the curves of both gate metrics over rounds."""
        versions = self.views.versions()
        judged = [v for v in versions if v["fleet"] and v["round"] is not None]
        return {
            "deployed_version": self.views.deployed_version(),
            "versions": versions,
            "curves": {
                "round": [v["round"] for v in judged],
                "version": [v["version"] for v in judged],
                "accuracy": [v["fleet"]["accuracy"] for v in judged],
                "balanced_accuracy": [v["fleet"]["balanced_accuracy"] for v in judged],
                "promoted": [v["status"] == "promoted" for v in judged],
            },
        }
