"""End to end in headless Chromium: a pipeline runs in the background (its own runner process),
the dashboard serves on a free 127.0.0.1 port, and the browser watches the step page: the
progress moves, the final counts equal the rows of the output file, an error's traceback opens,
and screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from parallelrun.ui.server import Dashboard

from fixtures.ui_server import make_workspace, output_rows, stop_runs, submit, wait_for

TERMINAL = ("Finished", "Failed", "Canceled")


def text(driver, testid: str) -> str:
    """The text of the first element with that test id ('' when none), read in one step: the
    page re-renders parts of itself as updates arrive."""
    return driver.execute_script(
        "const e = document.querySelector(`[data-testid='${arguments[0]}']`);"
        "return e ? e.innerText : '';", testid)


def number(value: str) -> int:
    return int(value.replace(",", ""))


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def live_run(tmp_path):
    """A workspace, a dashboard on it, and a slow run going (60 items, 2 workers)."""
    ws = make_workspace(tmp_path, items=60)
    server = Dashboard(ws, port=0, poll_seconds=0.3).start()
    run = submit(ws, tmp_path, experiment="live", delay=0.12)
    try:
        yield ws, server, run
    finally:
        server.stop()
        stop_runs(ws)


def test_step_page_follows_a_running_step(browser, live_run, artifacts):
    ws, server, run = live_run
    step = wait_for(lambda: (run.find_step_run("score-files") or [None])[0], timeout=60)
    wait_for(lambda: step.get_status() in ("Running",) + TERMINAL, timeout=60)
    browser.get(f"{server.url}steps/{step.id}")
    wait_for(lambda: text(browser, "step-status"), timeout=30)

    # watch the counters while the step runs: they must move with the page left alone
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = text(browser, "step-status")
        done = text(browser, "stat-minibatches-done")
        if done and "/" in done and (not seen or seen[-1] != (done, status)):
            seen.append((done, status))
        if status in TERMINAL:
            break
        time.sleep(0.1)
    assert text(browser, "step-status") == "Finished", seen
    running = [done for done, status in seen if status == "Running"]
    moving = {number(d.split("/")[0]) for d in running}
    assert len(moving) >= 2, f"the page showed no progress while the step ran: {seen}"

    # the final counts on the page are the output file's rows (and the catalog's)
    rows = output_rows(step)
    wait_for(lambda: text(browser, "stat-items-succeeded") == str(len(rows)), timeout=20)
    counts = step.get_counts()
    assert number(text(browser, "stat-items-failed")) == counts["items_failed"] > 0
    assert text(browser, "stat-minibatches-done") == (
        f"{counts['minibatches_total']} / {counts['minibatches_total']}")
    assert len(rows) + counts["items_failed"] == 60
    assert number(text(browser, "stat-retries")) == counts["retries"] > 0

    # the error summary: ValueError with its count (each failing mini-batch tried twice)...
    tries = 2 * counts["minibatches_failed"]
    selector = "tr.error-group[data-error-type='ValueError'] td:nth-child(2)"
    wait_for(lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, selector)] ==
             [str(tries)], timeout=20)
    # ... and its traceback opens
    group = browser.find_element(By.CSS_SELECTOR, "tr.error-group[data-error-type='ValueError']")
    trace = browser.find_element(By.CSS_SELECTOR, "tr.traceback-row [data-testid='traceback']")
    assert not trace.is_displayed()
    group.find_element(By.CSS_SELECTOR, "[data-testid='show-traceback']").click()
    wait_for(lambda: trace.is_displayed(), timeout=10)
    assert "Traceback (most recent call last)" in trace.text and "ValueError: bad item" in trace.text
    # workers, chart and logs are there
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-testid='workers'] tr[data-worker]")) == 2
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid='throughput-chart'] path.line")
    wait_for(lambda: "status: Finished" in text(browser, "log-text"), timeout=20)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(artifacts / "ui-step-page.png"))

    # the item list of that exception type, with one traceback opened
    group.find_element(By.CSS_SELECTOR, "[data-testid='failure-list']").click()
    rows_shown = wait_for(lambda: browser.find_elements(
        By.CSS_SELECTOR, "[data-testid='failures'] tr[data-entry]"), timeout=20)
    assert len(rows_shown) == tries
    rows_shown[0].find_element(By.TAG_NAME, "button").click()
    opened = browser.find_elements(By.CSS_SELECTOR, "[data-testid='failures'] [data-testid='traceback']")[0]
    wait_for(lambda: "ValueError: bad item" in opened.text, timeout=10)
    browser.save_screenshot(str(artifacts / "ui-failures-page.png"))
    assert console_errors(browser) == []


def test_run_and_list_pages_show_the_finished_run(browser, dashboard, ui_workspace, artifacts):
    browser.get(f"{dashboard.url}runs/{ui_workspace.run_id}")
    wait_for(lambda: text(browser, "run-status") == "Finished", timeout=20)
    node = browser.find_element(By.CSS_SELECTOR, "[data-testid='graph'] g.node.step")
    assert "Finished" in node.get_attribute("class")
    row = browser.find_element(By.CSS_SELECTOR, "[data-testid='steps'] tr[data-step='score-files']")
    assert "22" in row.text and "15/15" in row.text
    wait_for(lambda: "Finished" in text(browser, "log-text"), timeout=20)
    browser.save_screenshot(str(artifacts / "ui-run-page.png"))
    # links lead on to the step page
    node.find_element(By.XPATH, "..").click()
    wait_for(lambda: text(browser, "step-name") == "score-files", timeout=20)

    browser.get(dashboard.url)
    table = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-testid='experiments'] a"), timeout=20)
    assert "scoring" in [a.text for a in table]
    browser.get(f"{dashboard.url}experiments/scoring")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-run='{ui_workspace.run_id}']"), timeout=20)
    browser.save_screenshot(str(artifacts / "ui-runs-page.png"))
    browser.get(f"{dashboard.url}datasets")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "tr[data-name='numbers']"), timeout=20)
    browser.find_element(By.CSS_SELECTOR, "tr[data-name='numbers'] a").click()
    wait_for(lambda: "v2" in browser.find_element(By.CSS_SELECTOR, "[data-testid='registry']").text
             and "v1" in browser.find_element(By.CSS_SELECTOR, "[data-testid='registry']").text, timeout=20)
    browser.get(f"{dashboard.url}models")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "tr[data-name='doubler']"), timeout=20)
    browser.get(f"{dashboard.url}compute")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-testid='compute'] tr[data-name='local']"), timeout=20)
    assert console_errors(browser) == []


def test_cancel_from_the_run_page_with_the_printed_token(browser, dashboard, ui_workspace):
    run = submit(ui_workspace.ws, ui_workspace.root, experiment="browser-cancel", delay=0.5,
                 workers=1)
    wait_for(lambda: run.get_status() == "Running", timeout=60)
    # the URL printed at start carries the token in its fragment; the page keeps it for the tab
    browser.get(f"{dashboard.url}runs/{run.id}#token={dashboard.token}")
    button = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-testid='cancel']"),
                      timeout=20)[0]
    assert "#token" not in browser.current_url  # not left in the address bar or history
    button.click()
    wait_for(lambda: "Cancel requested" in browser.find_element(By.TAG_NAME, "main").text,
             timeout=20)
    wait_for(lambda: text(browser, "run-status") == "Canceled", timeout=60)
    assert run.get_status() == "Canceled"
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='cancel']")
