"""The dashboard's /api/ JSON and its pages against a real store file (no browser, no
processes): every endpoint checked against what the Store itself returns; malformed and
unknown requests; the operator's sign-in, CSRF and actions; the read-only mode."""

from __future__ import annotations

import base64
import html
import os
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from store_fill import STAGES as SECAGG_STAGES
from store_fill import fill_store

from edge.device_identity import write_certificate
from edge.secagg.identity import SigningKey
from edge.tasks import PLATFORM_CHARS, PollRequest
from federated.authority import EnrollmentRequest, sign_request
from federated.dashboard.actions import FleetActions
from federated.dashboard.app import DashboardConfig, build_app
from federated.dashboard.auth import OperatorAuth, OperatorTokenError, read_operator_token
from federated.dashboard.data import FleetData, LinkInfo
from federated.dashboard.server import DashboardAddressError, parse_address, tls_files
from federated.store import MissingStore, Store, UncertifiedDevice
from federated.store_views import FleetViews

TOKEN = "op_" + "x" * 40


@pytest.fixture
def fleet_db(tmp_path: Path) -> tuple[Path, dict]:
    db = tmp_path / "fleet.db"
    return db, fill_store(db, devices=6, rounds=11, running=True)


def _client(db: Path, operator: bool = False, links: dict | None = None) -> TestClient:
    views = FleetViews(db)
    data = FleetData(views, (lambda: links) if links is not None else None)
    if operator:
        return TestClient(build_app(data, OperatorAuth(TOKEN), FleetActions(db)))
    return TestClient(build_app(data))


def _signed_in(c: TestClient) -> str:
    """Sign in through the form; returns the session's CSRF token (read from a page)."""
    r = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/versions").text
    marker = 'name="csrf" value="'
    return page[page.index(marker) + len(marker) :].split('"', 1)[0]


def test_fleet_and_devices_match_the_store(fleet_db) -> None:
    db, _ = fleet_db
    links = {1: LinkInfo(True, 3, {"machine": "aarch64", "python": "3.11.2", "os": "Linux"})}
    c = _client(db, links=links)
    fleet = c.get("/api/fleet").json()
    store = Store(db, create=False)
    assert fleet["deployed_version"] == store.deployed().version
    assert [d["name"] for d in fleet["devices"]] == [d.name for d in store.devices()]
    assert fleet["rounds"] == {
        "running": 1,
        "completed": store.completed_rounds(),
        "aborted": sum(r["status"] == "aborted" for r in store.rounds()),
    }
    first = fleet["devices"][0]
    assert first["state"] == "online" and first["deployed"] == 3
    assert first["platform"]["machine"] == "aarch64"
    # Not linked to the running coordinator: offline, deployed version unknown.
    assert all(d["state"] == "offline" and d["deployed"] is None for d in fleet["devices"][1:])
    # Each device's last on-device metrics are its newest device_metrics row.
    rows = sqlite3.connect(db).execute(
        "SELECT device_id, MAX(round_id) FROM device_metrics GROUP BY device_id"
    )
    newest = dict(rows.fetchall())
    for d in fleet["devices"]:
        got = d["last_metrics"]
        assert (got and got["round"]) == newest.get(d["id"])
    assert c.get("/api/devices").json()["devices"] == fleet["devices"]
    store.close()


def test_rounds_match_the_store_newest_first_with_paging(fleet_db) -> None:
    db, info = fleet_db
    c = _client(db)
    store = Store(db, create=False)
    want = list(reversed(store.rounds()))
    got = c.get("/api/rounds?limit=500").json()["rounds"]
    assert [r["id"] for r in got] == [r["id"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g["status"] == w["status"] and g["timings"] == (w["timings"] or {})
        assert [p["id"] for p in g["participants"]] == w["participants"]
        assert g["survivors"] == w["survivors"]
        assert len(g["sessions"]) == 1
        if w["status"] == "completed":  # the timeline's seconds are the stored timings
            secagg = sum(w["timings"][f"secagg_{s}"] for s in SECAGG_STAGES)
            assert g["stages"][0]["seconds"] == pytest.approx(secagg)
            assert g["stages"][1]["seconds"] == w["timings"]["export"]
    aborted = next(r for r in got if r["id"] in info["aborted_rounds"])
    assert aborted["sessions"][0]["status"] == "aborted"
    assert aborted["dropped"][0]["stage"] == "MASKED_INPUT_COLLECTION"
    assert [s["state"] for s in aborted["stages"]][:2] == ["failed", "pending"]
    held = next(r for r in got if r["new_version"] in info["held"])
    assert held["verdict"]["promoted"] is False and "held back" in held["verdict"]["reason"]
    assert held["stages"][-1]["state"] == "skipped"
    page = c.get("/api/rounds?limit=3&before=5").json()["rounds"]
    assert [r["id"] for r in page] == [4, 3, 2]
    assert c.get("/api/rounds/4").json() == page[0]
    store.close()


def test_the_live_round_is_read_from_the_stage_boundary_rows(fleet_db) -> None:
    db, _ = fleet_db
    live = _client(db).get("/api/rounds/live").json()["round"]
    assert live["status"] == "running"
    states = {s["stage"]: s["state"] for s in live["stages"]}
    # fill_store leaves the last round with its candidate stored and metrics arriving.
    assert states == {
        "train+secagg": "done",
        "export": "done",
        "evaluate": "running",
        "gate": "pending",
        "deploy": "pending",
    }
    assert live["evaluated"] >= 1


@pytest.mark.parametrize(("promote", "deploy_state"), [(True, "running"), (False, "skipped")])
def test_the_live_round_after_the_gate(fleet_db, promote: bool, deploy_state: str) -> None:
    """Between the gate's verdict and the round's end: a promoted version is deploying; a
    rejected one deploys nothing, so nothing is shown running."""
    db, _ = fleet_db
    store = Store(db)
    live = store.latest_version()
    assert live is not None and live.status == "candidate"
    store.judge_version(live.version, promote, "a verdict", {"accuracy": 0.5})
    store.close()
    got = _client(db).get("/api/rounds/live").json()["round"]
    states = {s["stage"]: s["state"] for s in got["stages"]}
    assert states == {
        "train+secagg": "done",
        "export": "done",
        "evaluate": "done",
        "gate": "done",
        "deploy": deploy_state,
    }


def test_versions_match_the_store_with_curves_and_the_deployed_one(fleet_db) -> None:
    db, info = fleet_db
    body = _client(db).get("/api/versions").json()
    store = Store(db, create=False)
    want = store.versions()
    assert [v["version"] for v in body["versions"]] == [v.version for v in want]
    for g, w in zip(body["versions"], want, strict=True):
        assert (g["status"], g["parent"], g["round"], g["fleet"], g["gate_reason"]) == (
            w.status,
            w.parent,
            w.round_id,
            w.fleet_metrics,
            w.gate_reason,
        )
    assert [v["version"] for v in body["versions"] if v["deployed"]] == [store.deployed().version]
    judged = [v for v in want if v.fleet_metrics]
    assert body["curves"]["accuracy"] == [v.fleet_metrics["accuracy"] for v in judged]
    assert sum(body["curves"]["promoted"]) == len(info["promoted"])
    store.close()


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/rounds?limit=abc", 400),
        ("/api/rounds?limit=0", 400),
        ("/api/rounds?limit=100000", 400),
        ("/api/rounds?before=x", 400),
        ("/api/rounds/9999", 404),
        ("/api/rounds/abc", 404),
        ("/api/nothing", 404),
        ("/login", 404),  # read-only: no sign-in at all
    ],
)
def test_malformed_and_unknown_requests(fleet_db, url: str, status: int) -> None:
    r = _client(fleet_db[0]).get(url)
    assert r.status_code == status
    if url.startswith("/api/"):
        assert "error" in r.json()


def test_read_only_dashboard_has_no_actions_and_sends_strict_headers(fleet_db) -> None:
    db, _ = fleet_db
    c = _client(db)
    before = Store(db, create=False).deployments()
    for action in ("rollback", "revoke", "enroll"):
        r = c.post(f"/actions/{action}", data={"version": "1", "name": "pi-00"})
        assert r.status_code in (404, 405)
    assert c.post("/api/fleet").status_code == 405
    assert Store(db, create=False).deployments() == before
    r = c.get("/")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sign-in" not in r.text and "read-only" in r.text


def test_store_text_is_escaped_in_pages(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    fill_store(db, devices=2, rounds=1)
    store = Store(db)
    rid = store.start_round(1, [1])
    store.finish_round(rid, False, "<script>alert(1)</script>")
    store.close()
    page = _client(db).get("/rounds").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_actions_are_refused_without_sign_in_or_with_a_forged_csrf_token(fleet_db) -> None:
    db, info = fleet_db
    c = _client(db, operator=True)
    target = info["promoted"][0]
    before = Store(db, create=False).deployments()
    # Not signed in.
    r = c.post("/actions/rollback", data={"version": str(target), "csrf": "x"})
    assert r.status_code == 403 and "sign in" in r.text
    # Wrong operator token; a token in the URL does not sign in.
    assert c.post("/login", data={"token": "op_" + "y" * 40}).status_code == 403
    c.get(f"/login?token={TOKEN}")
    assert "pifed_session" not in c.cookies
    csrf = _signed_in(c)
    for forged in ("", "forged", csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
        r = c.post("/actions/rollback", data={"version": str(target), "csrf": forged})
        assert r.status_code == 403 and "CSRF" in r.text
    r = c.post("/actions/revoke", data={"name": "pi-00"})  # no CSRF field at all
    assert r.status_code == 403
    store = Store(db, create=False)
    assert store.deployments() == before
    assert all(d.revoked is None for d in store.devices())
    # Another session's CSRF token is not this one's.
    other = _client(db, operator=True)
    other_csrf = _signed_in(other)
    assert other_csrf != csrf
    store.close()


def test_signed_in_actions_change_the_store_and_set_a_strict_cookie(fleet_db, tmp_path) -> None:
    db, info = fleet_db
    c = _client(db, operator=True)
    r = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    csrf = _signed_in(c)
    target = info["promoted"][0]
    r = c.post("/actions/rollback", data={"version": str(target), "csrf": csrf, "reason": "test"})
    assert r.status_code == 200, r.text
    store = Store(db, create=False)
    assert store.deployed().version == target
    assert store.deployments()[-1][3:] == ("rollback", "test")
    # A held-back version is refused by the store's rule, and nothing changes.
    r = c.post("/actions/rollback", data={"version": str(info["held"][0]), "csrf": csrf})
    assert r.status_code == 400 and "not promoted" in r.text
    assert c.post("/actions/rollback", data={"version": "1e3", "csrf": csrf}).status_code == 400
    assert store.deployed().version == target
    assert c.post("/actions/revoke", data={"name": "pi-01", "csrf": csrf}).status_code == 200
    assert next(d for d in store.devices() if d.name == "pi-01").revoked is not None
    # Enrollment, offline as the coordinator never holds the authority's key: the Pi's public
    # key in, its token and the request to sign out; pending until the certificate comes back.
    pi_key = SigningKey.generate()
    bad = c.post("/actions/enroll", data={"name": "pi-new", "public_key": "12ab", "csrf": csrf})
    assert bad.status_code == 400 and "hex digits" in bad.text
    r = c.post(
        "/actions/enroll", data={"name": "pi-new", "public_key": pi_key.public.hex(), "csrf": csrf}
    )
    assert r.status_code == 200, r.text
    token = r.text.split('<pre id="token">', 1)[1].split("</pre>", 1)[0]
    request_json = html.unescape(r.text.split('<pre id="request">', 1)[1].split("</pre>", 1)[0])
    with pytest.raises(UncertifiedDevice):
        store.authenticate(token)
    cert = sign_request(EnrollmentRequest.from_json(request_json), info["authority"])
    line = write_certificate(tmp_path / "pi-new.cert", cert).read_text()
    raw = bytearray(cert.to_bytes())
    raw[-1] ^= 1  # one bit of the authority's signature
    forged = f"{line.split()[0]} {base64.b64encode(bytes(raw)).decode()}"
    r = c.post("/actions/certificate", data={"certificate": forged, "csrf": csrf})
    assert r.status_code == 400 and "enrollment authority" in r.text
    with pytest.raises(UncertifiedDevice):
        store.authenticate(token)
    r = c.post("/actions/certificate", data={"certificate": line, "csrf": csrf})
    assert r.status_code == 200, r.text
    assert store.authenticate(token).name == "pi-new"
    assert c.post("/actions/unknown", data={"csrf": csrf}).status_code == 404
    # Signed out: the session's CSRF token no longer works.
    c.post("/logout", data={"csrf": csrf})
    assert c.post("/actions/revoke", data={"name": "pi-02", "csrf": csrf}).status_code == 403
    store.close()


def test_secure_cookie_under_tls(fleet_db) -> None:
    db, _ = fleet_db
    app = build_app(
        FleetData(FleetViews(db)),
        OperatorAuth(TOKEN),
        FleetActions(db),
        DashboardConfig(secure_cookies=True),
    )
    r = TestClient(app).post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()


def test_operator_token_file_rules(tmp_path: Path) -> None:
    f = tmp_path / "op"
    f.write_text(TOKEN + "\n")
    os.chmod(f, 0o600)
    assert read_operator_token(f) == TOKEN
    os.chmod(f, 0o644)
    with pytest.raises(OperatorTokenError, match="chmod 600"):
        read_operator_token(f)
    f.write_text("short")
    os.chmod(f, 0o600)
    with pytest.raises(OperatorTokenError, match="at least"):
        read_operator_token(f)
    with pytest.raises(OperatorTokenError, match="create it"):
        read_operator_token(tmp_path / "missing")
    folder = tmp_path / "tokens"
    folder.mkdir()
    with pytest.raises(OperatorTokenError, match=r"is a folder; give the token's file") as e:
        read_operator_token(folder)
    assert f"> {folder / 'operator-token'}`" in str(e.value) and "Errno" not in str(e.value)


def test_a_binary_operator_token_file_is_named_with_the_fix(tmp_path: Path) -> None:
    f = tmp_path / "op"
    f.write_bytes(bytes(range(256)))
    os.chmod(f, 0o600)
    with pytest.raises(
        OperatorTokenError, match=r"op is not text \(binary or damaged\).*umask 077"
    ):
        read_operator_token(f)


def test_views_never_write_and_refuse_a_missing_file(fleet_db, tmp_path: Path) -> None:
    views = FleetViews(fleet_db[0])
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        views._db.execute("DELETE FROM devices")
    with pytest.raises(MissingStore, match="--db"):
        FleetViews(tmp_path / "nope.db")


def test_tls_is_required_beyond_loopback(tmp_path: Path) -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:9") == ("::1", 9)
    with pytest.raises(DashboardAddressError, match="HOST:PORT"):
        parse_address("host:http")
    assert tls_files("127.0.0.1", None) is None
    with pytest.raises(DashboardAddressError, match="--certs"):
        tls_files("0.0.0.0", None)
    with pytest.raises(DashboardAddressError, match="pifed certs"):
        tls_files("192.168.1.5", tmp_path)


def test_the_poll_platform_keeps_known_short_fields_only() -> None:
    p = PollRequest(
        3, None, {"machine": "aarch64", "python": "3.11.2", "os": "Linux", "trainer": "t"}
    )
    assert PollRequest.from_header(p.header()) == p
    odd = PollRequest.from_header(
        {"deployed": 1, "platform": {"machine": "x" * 500, "names": "secret", "os": 5}}
    )
    assert odd.platform == {"machine": "x" * PLATFORM_CHARS}
    assert PollRequest.from_header({"deployed": 1, "platform": "bad"}).platform is None
    assert "platform" not in PollRequest(None).header()
