"""The dashboard in a real headless Chromium against a real fleet on loopback: a coordinator
in this process (its dashboard beside it, as `pifed server --dashboard` wires it) and two
`pifed edge` subprocesses.

- the rounds page, opened before the rounds start, shows a round pass through its stages
  while it runs, without a reload;
- the fleet page lists both Pis with the version each has deployed;
- a rollback done in the browser after signing in with the operator token reaches both Pis
  (`pifed predict --state` then runs that version's model file);
- the same without signing in, or with a forged CSRF token, is refused and changes nothing;
- the quality page shows the deployed version's fleet quality (recall table and heatmap).

``PIFED_SCREENSHOTS=DIR`` (`make screenshots`) saves each page as a PNG there.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from browser import chrome, screenshot_dir
from fleet_harness import device_folders, started_fleet
from test_fleet import _cfg

from edge.state import DeviceState
from federated.dashboard.wiring import dashboard_beside

pytestmark = pytest.mark.slow  # TensorFlow, real processes, a real browser

OPERATOR = "op_" + "k" * 40


def _wait(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _post_form(driver, action: str, fields: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Submit a form the page never offered (what a forged request from a script looks like)."""
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "for (const [k, v] of Object.entries(arguments[1])) {"
        "  const i = document.createElement('input'); i.type = 'hidden'; i.name = k;"
        "  i.value = v; f.append(i); }"
        "document.body.append(f); f.submit();",
        action,
        fields,
    )


def test_dashboard_on_a_live_fleet(tmp_path: Path, fleet_model: Path, certs: Path, ds) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    shots = screenshot_dir()
    token_file = tmp_path / "operator-token"
    token_file.write_text(OPERATOR + "\n")
    token_file.chmod(0o600)
    folders = device_folders(ds, tmp_path, 2, per_device=2500)  # training lasts over a poll
    driver = chrome()
    other = chrome()
    logged: list[dict] = []
    try:
        with started_fleet(
            tmp_path, fleet_model, certs, _cfg(rounds=3, local_epochs=2), folders
        ) as fleet:
            dash = dashboard_beside(
                fleet.server,
                "127.0.0.1:0",
                None,
                operator_token=token_file,
                on_event=logged.append,
            )
            base = dash.url.rstrip("/")
            try:
                # -- the rounds page follows the rounds live -------------------------------
                # Each stage of each round is held open (in the runner's thread, at the point
                # the store already says it is running) until the page, never reloaded, has
                # shown it running, or 30 s pass: the page is checked against every stage,
                # not against whichever ones happened to outlast a poll on a loaded machine.
                driver.get(base + "/rounds")
                driver.execute_script("window.__notReloaded = true;")
                seen: list[tuple[int, str]] = []
                shown = threading.Condition()
                held: list[tuple[int, str]] = []
                runner_obj = fleet.server.coordinator.runner

                def hold(stage: str, rid: int) -> None:
                    with shown:
                        held.append((rid, stage))
                        shown.wait_for(lambda: (rid, stage) in seen, timeout=30)

                def paced(name: str, stage: str, before: bool):  # type: ignore[no-untyped-def]
                    original = getattr(runner_obj, name)

                    def wrapper(round_id, *a, **kw):  # type: ignore[no-untyped-def]
                        if before:
                            hold(stage, round_id)
                        out = original(round_id, *a, **kw)
                        if not before:
                            hold(stage, round_id)
                        return out

                    setattr(runner_obj, name, wrapper)

                # Held on entry: the store then says that stage is the one running (training:
                # the round's row and no version; export: the sum's session completed; evaluate:
                # a candidate; deploy: a promoted version).
                paced("_train_and_aggregate", "train+secagg", before=True)
                paced("_export", "export", before=True)
                paced("_evaluate", "evaluate", before=True)
                paced("_deploy", "deploy", before=True)
                runner = fleet.server.run_rounds_in_background()

                def live() -> tuple[int, dict[str, str]]:
                    # Read in one script: the page re-renders the panel every half second.
                    rid, states = driver.execute_script(
                        "const box = document.getElementById('live');"
                        "return [box.dataset.round || '0', [...box.querySelectorAll("
                        "'li[data-stage]')].map(li => [li.dataset.stage, li.className])];"
                    )
                    return int(rid), dict(states)

                while runner.is_alive():
                    rid, states = live()
                    for stage, state in states.items():
                        item = (rid, stage)
                        if state == "running" and item not in seen:
                            with shown:
                                seen.append(item)
                                shown.notify_all()
                            if shots and item == (2, "evaluate"):
                                driver.save_screenshot(str(shots / "dashboard-rounds.png"))
                    time.sleep(0.1)
                runner.join()
                store = fleet.server.store
                assert store.completed_rounds() == 3, store.rounds()
                assert driver.execute_script("return window.__notReloaded === true;")
                # Every stage the runner entered was shown running, in the runner's order.
                assert held, "the runner entered no stage"
                assert seen == held, (seen, held)
                promoted_rounds = {
                    v.round_id for v in map(store.version, store.promoted_versions()) if v.round_id
                }
                for rid in (1, 2, 3):
                    want = ["train+secagg", "export", "evaluate"]
                    want += ["deploy"] if rid in promoted_rounds else []
                    assert [st for r, st in seen if r == rid] == want, (rid, seen)
                # The finished rounds replaced the table in place: all three, completed.
                _wait(
                    lambda: len(driver.find_elements(By.CSS_SELECTOR, "#rounds tr.completed")) == 3,
                    10,
                    "the rounds table to show 3 completed rounds",
                )
                assert driver.execute_script("return window.__notReloaded === true;")
                # -- the fleet page lists each Pi and the version it runs ------------------
                latest = store.deployed().version
                for e in fleet.edges:
                    e.wait_for(
                        lambda ev: ev.get("event") == "deploy" and ev.get("deployed") == latest
                    )

                def fleet_rows() -> dict[str, str]:
                    driver.get(base + "/")
                    rows = driver.find_elements(By.CSS_SELECTOR, "#devices tbody tr")
                    return {
                        r.get_attribute("data-device") or "": r.find_element(
                            By.CSS_SELECTOR, "td.deployed"
                        ).text
                        for r in rows
                    }

                _wait(
                    lambda: fleet_rows() == {"pi-0": f"v{latest}", "pi-1": f"v{latest}"},
                    30,
                    f"both Pis listed with v{latest}",
                )
                text = driver.find_element(By.ID, "devices").text
                assert "online" in text and "Python" in text
                if shots:
                    driver.save_screenshot(str(shots / "dashboard-fleet.png"))
                # -- the quality page: the deployed version's fleet quality (issue 22) -------
                driver.get(base + "/quality")
                summary = driver.find_element(By.ID, "quality-summary").text
                assert "2 Pis" in summary, summary
                assert driver.find_elements(By.CSS_SELECTOR, "#recall tbody tr[data-language]")
                assert driver.find_elements(By.CSS_SELECTOR, "svg.heatmap rect.cell")
                if shots:
                    driver.save_screenshot(str(shots / "dashboard-quality.png"))
                promoted = store.promoted_versions()
                target = promoted[0]
                assert target != latest
                deploys_before = store.deployments()

                # -- refused: not signed in ------------------------------------------------
                other.get(base + "/versions")
                assert not other.find_elements(By.CSS_SELECTOR, "form[action='/actions/rollback']")
                _post_form(other, "/actions/rollback", {"version": str(target), "csrf": "x"})
                refusal = _wait(lambda: other.find_elements(By.ID, "result"), 10, "the refusal")
                assert "sign in" in refusal[0].text
                # -- refused: signed in, forged CSRF token ---------------------------------
                driver.get(base + "/login")
                driver.find_element(By.NAME, "token").send_keys(OPERATOR)
                driver.find_element(By.CSS_SELECTOR, "#login button").click()
                _wait(
                    lambda: driver.find_elements(By.CSS_SELECTOR, "form[action='/logout']"),
                    10,
                    "the signed-in page",
                )
                driver.get(base + "/versions")
                form = f"form[action='/actions/rollback'] input[name='version'][value='{target}']"
                driver.find_element(By.CSS_SELECTOR, form)
                driver.execute_script(
                    "document.querySelectorAll('input[name=csrf]').forEach("
                    "i => i.value = 'forged-' + i.value.slice(7));"
                )
                driver.find_element(By.CSS_SELECTOR, f"tr[data-version='{target}'] button").click()
                driver.switch_to.alert.accept()
                assert (
                    "CSRF"
                    in _wait(lambda: driver.find_elements(By.ID, "result"), 10, "the refusal")[
                        0
                    ].text
                )
                time.sleep(2 * fleet.server.coordinator.cfg.poll_wait)  # a poll or two
                assert store.deployments() == deploys_before
                assert all(DeviceState(e.state).deployed_version() == latest for e in fleet.edges)

                # -- the rollback, signed in, reaches every Pi -----------------------------
                driver.get(base + "/versions")
                if shots:
                    driver.save_screenshot(str(shots / "dashboard-versions.png"))
                driver.find_element(By.CSS_SELECTOR, f"tr[data-version='{target}'] button").click()
                driver.switch_to.alert.accept()
                result = _wait(lambda: driver.find_elements(By.ID, "result"), 10, "the result")
                assert f"version {target} is now deployed" in result[0].text
                assert store.deployed().version == target
                for e in fleet.edges:
                    e.wait_for(
                        lambda ev: ev.get("event") == "deploy" and ev.get("deployed") == target,
                        timeout=60,
                    )
                model_sha = store.version(target).artifacts
                for e in fleet.edges:
                    state = DeviceState(e.state)
                    assert state.deployed_version() == target
                    used = sorted(state.deployed_dir().glob("model_*.tflite"))[0]  # type: ignore[union-attr]
                    assert _sha(used) == model_sha[used.name]
                    proc = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "pifed",
                            "predict",
                            "--state",
                            str(e.state),
                            "--json",
                            "Nakamura",
                        ],
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    assert proc.returncode == 0, proc.stderr
                    direct = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "pifed",
                            "predict",
                            "--model",
                            str(used),
                            "--json",
                            "Nakamura",
                        ],
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    assert proc.stdout == direct.stdout
                fleet_rows_after = _wait(
                    lambda: (lambda r: r if set(r.values()) == {f"v{target}"} else None)(
                        fleet_rows()
                    ),
                    30,
                    f"the fleet page showing v{target} on both Pis",
                )
                assert set(fleet_rows_after) == {"pi-0", "pi-1"}
                actions = [e for e in logged if e.get("event") == "dashboard_action"]
                assert [a["ok"] for a in actions if a["action"] == "rollback"] == [
                    False,
                    False,
                    True,
                ]
                if shots:
                    driver.get(base + "/login")
                    driver.save_screenshot(str(shots / "dashboard-login.png"))
            finally:
                dash.close()
    finally:
        driver.quit()
        other.quit()
