"""The explorer: its parameters mirror the scenario, and the app works in a real browser.

The browser test starts ``circuits-abm explore`` on a free port and drives Debian's
Chromium through Playwright (no downloaded browser builds).  Without Chromium it fails with a
message saying how to install it; ``.ci/run`` installs it.  Set
``CIRCUITS_ABM_SCREENSHOT=figures/explorer.png`` to keep its screenshot.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import circuits_abm as ca
from circuits_abm import builtin
from circuits_abm.viz import explorer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_TIMEOUT = 120.0  # seconds for the server to answer (first start compiles the kernels)


def test_the_settings_start_at_the_scenarios_values():
    spec = ca.load_scenario("two_clusters")
    settings = explorer.scenario_settings("two_clusters")
    assert settings["spec"] == "two_clusters"
    assert settings["geometry.sharing"] == spec.geometry.sharing
    assert settings["schedule.phase_length"] == spec.schedule.phase_length
    assert settings["learning.gamma"] == spec.learning.gamma
    model = explorer.initial_model("two_clusters")
    assert model.spec.geometry.sharing == spec.geometry.sharing
    assert explorer.run_command(settings) == "circuits-abm run two_clusters --seed 0"


def test_every_builtin_scenario_opens_with_its_own_values():
    """The sliders' ranges hold every built-in scenario, so none is silently clipped."""
    for name in builtin.names("scenario"):
        spec = ca.load_scenario(name)
        settings = explorer.scenario_settings(name)
        for path in explorer.SLIDERS:
            assert settings[path] == explorer.dotted_value(spec, path), (name, path)
        assert explorer.changes_from_file(settings) == {}


def test_the_copied_command_and_the_saved_file_run_what_the_explorer_shows(tmp_path):
    """The command and the scenario file, run by the real command line, give the same
    phases as the explorer's own model with the same settings."""
    settings = {**explorer.scenario_settings("switching_slow"), "seed": 7,
                "geometry.sharing": 0.15, "schedule.phase_length": 20}
    model = explorer.model_from(settings)
    model.run()
    shown = model.recorder.tables()[1]
    name, text = explorer.scenario_file(settings)
    (tmp_path / name).write_text(text)
    command = explorer.run_command(settings).split()
    assert command[:3] == ["circuits-abm", "run", "switching_slow"]
    for args, out in ((command[1:], "from_command"), (["run", name], "from_file")):
        subprocess.run([sys.executable, "-m", "circuits_abm", *args, "--out", out, "--quiet"],
                       cwd=tmp_path, check=True, capture_output=True)
        ran = ca.load_run(tmp_path / out).phases
        pd.testing.assert_frame_equal(ran.reset_index(drop=True), shown.reset_index(drop=True))


def test_the_regime_view_reads_the_trajectory_so_far():
    model = explorer.initial_model("standard")
    assert "no phase has finished yet" in explorer.regime_text(model)
    for _ in range(200):
        model.step()
    text = explorer.regime_text(model)
    found = ca.classify(model.recorder.tables()[1])
    assert f"`{found.regime}`" in text and f"confidence {found.confidence:.2f}" in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, "circuits-abm explore exited early"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)  # polling for the port, not waiting for a fixed time
    raise AssertionError(f"the explorer did not listen on port {port} in {START_TIMEOUT} s")


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    command = [sys.executable, "-m", "circuits_abm", "explore", "standard", "--port", str(port),
               "--host", "127.0.0.1", "--no-open"]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_server(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        print(log.read_text(errors="replace")[-5000:])  # shown by pytest if the test failed


def _plot_sources(page) -> list[str]:
    """The images' sources, read in one script so a redraw cannot happen half-way."""
    return page.evaluate("() => Array.from(document.images, (img) => img.src)")


def _wait_for_images(page, count: int) -> list[str]:
    """Wait until the page shows exactly ``count`` images and return their sources, read in
    the same script: Solara may replace the images at any time while it redraws."""
    found = page.wait_for_function(
        f"() => document.images.length === {count}"
        " && Array.from(document.images, (img) => img.src)", timeout=60_000)
    return found.json_value()


def _pause(page) -> None:
    """Click Mesa's pause button once (it toggles, so a second click would play again) and
    wait for the play button to come back, however slowly the page redraws under load.  A
    model that reached the end of its schedule has stopped already; Reset re-arms Mesa's
    controls then."""
    pause = page.get_by_role("button", name="❚❚")
    pause.click() if pause.is_enabled() else page.get_by_role("button", name="Reset").click()
    page.get_by_role("button", name="▶").wait_for(timeout=120_000)


def _header(page) -> str:
    return page.locator("p:has-text(' · seed ')").inner_text()


@pytest.mark.slow
def test_the_explorer_steps_plays_switches_scenario_saves_and_copies_in_a_real_browser(
        server, tmp_path):
    """Chromium is installed by `.ci/run`; without it this test fails rather than skipping."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    assert CHROMIUM is not None, "needs Chromium: `sudo apt-get install chromium`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1700, "height": 1400},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.goto(server, timeout=60_000)
        page.wait_for_selector("text=no phase has finished yet", timeout=60_000)
        _wait_for_images(page, 1)  # the reporters, before any phase ends

        page.get_by_role("button", name="Step").click()  # 25 steps per frame
        page.wait_for_selector("text=Regime so far", timeout=60_000)
        first_plots = _wait_for_images(page, 4)  # Muller, retention, tree, reporters

        page.get_by_role("button", name="▶").click()
        page.wait_for_function(
            "() => { const m = document.body.innerText.match(/Time: ([0-9.]+)/);"
            " return m !== null && parseFloat(m[1]) >= 100; }",
            timeout=120_000)
        _pause(page)
        assert _plot_sources(page) != first_plots
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)

        # Another scenario from the menu: every slider takes that file's values.
        page.get_by_label("scenario").click(force=True)
        page.get_by_role("option", name="switching_slow").click()
        page.wait_for_selector("text=switching_slow · seed", timeout=60_000)
        spec = ca.load_scenario("switching_slow")
        for path, (label, *_) in explorer.SLIDERS.items():
            value = explorer.dotted_value(spec, path)
            # The header changes before every slider has redrawn: wait for each (up to 60 s).
            expect(page.get_by_role("slider", name=label)).to_have_attribute(
                "aria-valuenow", f"{value:g}", timeout=60_000)
            assert f"{label.split(' (')[0]} {value:g}" in _header(page)  # the model's own

        # A slider rebuilds the model at once; Mesa's Reset keeps what the sliders say.
        sharing = page.get_by_role("slider", name="sharing")
        sharing.focus()
        page.keyboard.press("ArrowRight")
        shifted = f"{spec.geometry.sharing + 0.05:g}"
        page.wait_for_selector(f"text=sharing {shifted} ·", timeout=60_000)
        # the slider's number (its label may redraw after the header: wait for it)
        expect(page.get_by_text(f"sharing: {shifted}")).to_have_count(1, timeout=60_000)
        page.get_by_role("button", name="Step").click()
        page.wait_for_selector("text=Time: 25", timeout=60_000)
        page.get_by_role("button", name="Reset").click()
        page.wait_for_selector("text=Time: 0", timeout=60_000)
        assert f"sharing {shifted} ·" in _header(page)

        settings = {**explorer.scenario_settings("switching_slow"),
                    "geometry.sharing": float(shifted)}
        page.get_by_role("button", name="copy command").click()
        page.wait_for_selector("text=copied", timeout=10_000)
        assert page.evaluate("navigator.clipboard.readText()") == explorer.run_command(settings)
        with page.expect_download() as download:
            page.get_by_role("button", name="save scenario (TOML)").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert ca.load_scenario(saved) == ca.override(spec, {"geometry.sharing": float(shifted)})
        browser.close()

    keep = os.environ.get("CIRCUITS_ABM_SCREENSHOT")
    if keep:
        shutil.copyfile(tmp_path / "explorer.png", Path(keep))


def test_the_scenario_menu_accepts_only_built_in_names(tmp_path):
    settings = explorer.scenario_settings("standard")
    forged = tmp_path / "elsewhere.toml"
    forged.write_text('name = "elsewhere"\n[[environments]]\nname = "a"\n')
    assert explorer.settings_for_menu(str(forged), settings) is settings
    assert explorer.settings_for_menu("../scenarios/standard.toml", settings) is settings
    assert explorer.settings_for_menu("on_policy", settings)["spec"] == "on_policy"
