"""The dashboard in a real headless browser (Debian chromium driven by Selenium).

The real ``run`` service serves a data directory filled by ``replay`` with simulated
traffic. Without chromium/chromedriver/selenium the test skips, or fails with one line
when WCS_REQUIRE_BROWSER=1 (CI). A screenshot is kept in artifacts/ (git-ignored).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.service import Service, cli
from tests.external import unavailable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CHARTS = (
    "calls",
    "ratios",
    "acd",
    "pdd",
    "concurrency",
    "streams",
    "minutes",
    "keepalive",
    "messages",
    "failed",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1800",
    "--hide-scrollbars",
)


def _missing() -> str | None:
    for path in (CHROMIUM, DRIVER):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            return f"{path} not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    reason = _missing()
    if reason:
        unavailable("browser", reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=DriverService(shutil.which("chromedriver") or DRIVER), options=options
    )
    yield driver
    driver.quit()


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def drawn(driver: Any) -> dict[str, tuple[int, float]]:
    """Per chart: SVG bars/lines/dots drawn, and the sum of the values it shows."""
    script = (
        "return Object.fromEntries([...document.querySelectorAll('.chart')].map(c => "
        "[c.id.slice(6), [c.querySelectorAll('rect.bar, path.line, circle.dot').length, "
        "Number(c.dataset.total || 0)]]))"
    )
    result: dict[str, tuple[int, float]] = {
        k: tuple(v) for k, v in driver.execute_script(script).items()
    }
    return result


def tile(driver: Any, label: str) -> str:
    script = (
        "return [...document.querySelectorAll('.tile')].find(t => "
        "t.querySelector('.label').textContent === arguments[0])"
        ".querySelector('.value').textContent"
    )
    return str(driver.execute_script(script, label))


def test_dashboard_renders_simulated_data_and_filters(tmp_path, service_factory, browser):
    traffic = tmp_path / "sim.ndjson"
    cli("simulate", "--out", str(traffic), "--minutes", "30", "--seed", "3")
    data = tmp_path / "data"
    cli("replay", str(traffic), "--data-dir", str(data))
    # the read side requires credentials: the page gets them from its URL and must pass them
    # to its JSON calls itself (fetch() refuses URLs with credentials)
    service = Service(data, args=("--read-user", "reader", "--read-password", "pw-r34d"))
    service_factory.append(service)
    service.start()
    assert httpx.get(f"{service.url}/dashboard").status_code == 401
    assert httpx.get(f"{service.url}/api/kpi/calls").status_code == 401

    browser.get(f"http://reader:pw-r34d@127.0.0.1:{service.port}/dashboard#range=all&refresh=0")
    wait_for(lambda: browser.find_element("id", "status").text.startswith("Updated"), "data")
    charts = drawn(browser)
    assert set(charts) == set(CHARTS)
    assert all(count > 0 for count, _ in charts.values()), charts
    assert browser.find_elements("css selector", "#reasons tbody tr td.num")
    all_apps = (tile(browser, "Call attempts"), charts["calls"])

    from selenium.webdriver.support.ui import Select

    apps = [o.get_attribute("value") for o in Select(browser.find_element("id", "app_key")).options]
    assert len(apps) > 2, apps  # 'All apps' + the simulated app keys
    Select(browser.find_element("id", "app_key")).select_by_value(apps[1])
    wait_for(
        lambda: (tile(browser, "Call attempts"), drawn(browser)["calls"]) != all_apps,
        "the app filter to change the charts",
    )
    assert f"app_key={apps[1]}" in browser.current_url
    assert drawn(browser)["calls"][1] < all_apps[1][1]  # fewer calls for one app than for all

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    Select(browser.find_element("id", "app_key")).select_by_value("")
    wait_for(lambda: tile(browser, "Call attempts") == all_apps[0], "the unfiltered view")
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(artifacts / "dashboard.png"))
    assert service.stop() == 0
