"""The explorer: its parameters mirror the scenario, and the app works in a real browser.

The browser test starts ``circuits-abm explore`` on a free port and drives Debian's
Chromium through Playwright (no downloaded browser builds).  Without Chromium it is skipped
with a message saying how to install it; ``.ci/run`` installs it, so CI runs it.  Set
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

import pytest

import circuits_abm as ca
from circuits_abm import builtin
from circuits_abm.viz import explorer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
START_TIMEOUT = 120.0  # seconds for the server to answer (first start compiles the kernels)


def test_the_parameters_start_at_the_scenarios_values():
    spec = ca.load_scenario("two_clusters")
    params = explorer.model_params("two_clusters")
    assert params["spec"]["value"] == "two_clusters"
    assert "standard" in params["spec"]["values"]
    assert params["geometry.sharing"]["value"] == spec.geometry.sharing
    assert params["schedule.phase_length"]["value"] == spec.schedule.phase_length
    assert params["learning.gamma"]["value"] == spec.learning.gamma
    model = explorer.initial_model("two_clusters")
    assert model.spec.geometry.sharing == spec.geometry.sharing


def test_every_builtin_scenario_opens_with_its_own_values():
    """The sliders' ranges hold every built-in scenario, so none is silently clipped."""
    for name in builtin.names("scenario"):
        spec = ca.load_scenario(name)
        for path, item in explorer.model_params(name).items():
            if path in explorer.SLIDERS:
                assert item["value"] == explorer.dotted_value(spec, path), (name, path)


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
    return [img.get_attribute("src") for img in page.locator("img").all()]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: `sudo apt-get install chromium` "
                    "(Debian/Ubuntu), then run the test again")
def test_the_explorer_steps_plays_and_rebuilds_from_a_slider_in_a_real_browser(server,
                                                                              tmp_path):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1700, "height": 1400})
        page.goto(server, timeout=60_000)
        page.wait_for_selector("text=no phase has finished yet", timeout=60_000)
        assert len(_plot_sources(page)) == 1  # only the reporters before a phase has ended

        page.get_by_role("button", name="Step").click()  # 25 steps per frame
        page.wait_for_selector("text=Regime so far", timeout=60_000)
        first_label = page.locator("p:has-text('Regime so far')").inner_text()
        first_plots = _plot_sources(page)
        assert len(first_plots) == 4  # Muller, retention, tree, reporters

        page.get_by_role("button", name="▶").click()
        page.wait_for_function(
            "() => { const m = document.body.innerText.match(/Time: ([0-9.]+)/);"
            " return m !== null && parseFloat(m[1]) >= 500; }",
            timeout=120_000)
        pause = page.get_by_role("button", name="❚❚")
        if pause.is_enabled():  # the model may have reached the end of its schedule already
            pause.click()
        assert _plot_sources(page) != first_plots
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)

        sharing = page.get_by_role("slider", name="sharing")
        assert sharing.get_attribute("aria-valuenow") == "0.1"
        sharing.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        assert sharing.get_attribute("aria-valuenow") == "0.6"
        page.get_by_role("button", name="Reset").click()
        page.wait_for_selector("text=sharing 0.6", timeout=60_000)
        page.get_by_role("button", name="Step").click()
        page.wait_for_selector("text=Regime so far", timeout=60_000)
        assert page.locator("p:has-text('Regime so far')").inner_text() != first_label
        browser.close()

    keep = os.environ.get("CIRCUITS_ABM_SCREENSHOT")
    if keep:
        shutil.copyfile(tmp_path / "explorer.png", Path(keep))
