"""The dashboard in a real headless Chromium (Debian's chromium and chromedriver, driven by Selenium).

Signs in with a token by keyboard, watches a run started from outside appear without a reload, approves a
held egress request from the page and sees the connection go, opens the run's timeline, presses Stop all,
and then asks the kernel itself (/proc/*/cgroup) whether any process of any run is left.

usage: dashboard.py URL TOKEN WARDEN WORKSPACE POLICY PORT SCREENSHOTS
Prints one JSON object on stdout: {"runs": [...], "steps": [...]}; exits non-zero naming the failed step.
"""
import json
import os
import re
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

url, token, warden, workspace, policy, port, shots = sys.argv[1:8]
steps = []
runs = []


def step(name):
    steps.append(name)
    print(f"step: {name}", file=sys.stderr, flush=True)


def start_run(flags, command):
    out = subprocess.run(
        [warden, "run", "--detach", "--json", "--workspace", workspace] + flags + ["--"] + command,
        check=True, capture_output=True, text=True)
    run_id = json.loads(out.stdout)["id"]
    runs.append(run_id)
    return run_id


def shot(name):
    os.makedirs(shots, exist_ok=True)
    driver.save_screenshot(os.path.join(shots, f"dashboard-{name}.png"))


def processes_of(run_id):
    """Processes whose cgroup is the run's, read from /proc (not from Warden)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                text = f.read()
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"/warden/{run_id}\n" in text and state != "Z":
            found.append(int(pid))
    return found


options = Options()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--ignore-certificate-errors"]:
    options.add_argument(argument)
options.accept_insecure_certs = True
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 90)
try:
    step("sign in by keyboard")
    driver.get(url + "/")
    field = wait.until(EC.visibility_of_element_located((By.ID, "token")))
    shot("sign-in")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "whoami"), "(operator)"))

    step("a run started elsewhere appears without a reload")
    driver.execute_script("window.__noReload = 42")
    first = start_run(["--name", "browser-sleeper"], ["/bin/sleep", "300"])
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-run="{first}"][data-state="running"]')))
    assert driver.execute_script("return window.__noReload") == 42, "the page reloaded"

    step("a held request shows on the approvals page with its reasons and countdown")
    fetch = f"curl -s -o /dev/null -w '%{{http_code}}\\n' -m 1000 http://mirror.test:{port}/hello.txt >> codes-browser"
    held = start_run(["--name", "browser-asker", "--network", "proxy", "--policy", policy,
                      "--resolve", "mirror.test=127.0.0.1", "--approval-timeout", "900s"],
                     ["/bin/bash", "-c", f"{fetch}; sleep 300"])
    wait.until(EC.text_to_be_present_in_element((By.ID, "approval-count"), "1"))
    link = driver.find_element(By.ID, "nav-approvals")
    link.send_keys(Keys.ENTER)
    card = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "[data-approval]")))
    text = card.text
    assert "mirror.test" in text and "downloads from the mirror need a person" in text, text
    wait.until(lambda d: "expires in" in card.find_element(By.CLASS_NAME, "countdown").text)
    assert driver.execute_script("return window.__noReload") == 42, "the page reloaded"
    card.find_element(By.TAG_NAME, "summary").click()
    shot("approvals")

    step("approve from the page; the held connection proceeds")
    card.find_element(By.CSS_SELECTOR, "button.approve").click()
    deadline = time.time() + 90
    codes = ""
    while time.time() < deadline:
        try:
            with open(os.path.join(workspace, "codes-browser")) as f:
                codes = f.read().strip()
        except OSError:
            pass
        if codes:
            break
        time.sleep(0.1)
    assert codes == "200", f"the held fetch got {codes!r}"
    wait.until(EC.visibility_of_element_located((By.ID, "approvals-empty")))

    step("the run page shows its timeline and the audit chain's status")
    driver.get(f"{url}/#/runs/{held}")
    wait.until(EC.text_to_be_present_in_element((By.ID, "timeline"), "approval.used"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "chain-status"), "verified"))
    chain = driver.find_element(By.ID, "chain-status").text
    assert re.match(r"verified: \d+ events, \d+ signed checkpoints", chain), chain
    timeline = driver.find_element(By.ID, "timeline").text
    assert "decision" in timeline and "approval.decided" in timeline, timeline
    shot("run")
    driver.find_element(By.ID, "nav-events").send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "event-log"), "approval.used"))
    shot("events")

    step("readable at a phone's width")
    driver.set_window_size(390, 844)
    driver.find_element(By.ID, "nav-runs").send_keys(Keys.ENTER)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-run="{first}"]')))
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"
    shot("phone")
    driver.set_window_size(1280, 900)
    shot("runs")

    step("Stop all, confirmed, stops every run; the kernel agrees")
    driver.find_element(By.ID, "stop-all").click()
    wait.until(EC.visibility_of_element_located((By.ID, "confirm-stop-all")))
    driver.find_element(By.ID, "confirm-stop-all-button").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "flash"), "0 processes left"))
    flash = driver.find_element(By.ID, "flash").text
    assert "stopped 2 of 2 runs" in flash, flash
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, 'tr[data-state="running"]'))
    shot("stopped")
    left = {run_id: processes_of(run_id) for run_id in runs}
    assert not any(left.values()), f"processes left: {left}"
    print(json.dumps({"runs": runs, "steps": steps, "flash": flash}))
except (AssertionError, TimeoutException) as error:
    shot("failure")
    print(f"failed at '{steps[-1] if steps else 'start'}': {error!r}", file=sys.stderr)
    sys.exit(1)
finally:
    driver.quit()
