#!/usr/bin/python3
"""Drives the platform console in headless Debian Chromium (chromedriver via Selenium).

Run by platform/tests/browser.rs, which starts the platform, enrolls an appliance and ingests
findings, then checks through the API that the job this script creates exists. Prints
`JOB_ID=<id>` on success; any failed check raises (exit status 1) with the reason.

Usage: console_browser.py URL TOKEN APPLIANCE_ID FINDING_TITLE OUT_DIR
"""

import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

# A click that submits a form or follows a link returns before the next page has loaded
# (chromedriver does not wait for navigation), so every step after one waits for an element
# or address of the next page. Generous, because CI machines can be slow under load.
WAIT_SECS = 30


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def wait_for_id(driver, element_id, after):
    try:
        return WebDriverWait(driver, WAIT_SECS).until(EC.presence_of_element_located((By.ID, element_id)))
    except Exception as err:
        raise AssertionError(f"after {after}: no #{element_id} within {WAIT_SECS} s at {driver.current_url}") from err


def wait_for_url(driver, suffix, after):
    try:
        WebDriverWait(driver, WAIT_SECS).until(lambda d: d.current_url.endswith(suffix))
    except Exception as err:
        raise AssertionError(f"after {after}: not at ...{suffix} within {WAIT_SECS} s but at {driver.current_url}") from err


def main():
    url, token, appliance, title, out_dir = sys.argv[1:6]
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="picket-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        # The platform's certificate chains to its own enrollment CA, unknown to Chromium.
        "--ignore-certificate-errors",
        f"--user-data-dir={profile}",
    ]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    try:
        # Without a session the console sends us to the login form.
        driver.get(url + "/console")
        check(driver.current_url.endswith("/console/login"), f"not redirected to login: {driver.current_url}")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.ID, "login").click()
        wait_for_url(driver, "/console", "login")
        wait_for_id(driver, "fleet", "login")

        cookies = {c["name"]: c for c in driver.get_cookies()}
        session = cookies.get("picket_session")
        check(session is not None, f"no session cookie: {cookies}")
        check(session.get("httpOnly") is True, f"session cookie not HttpOnly: {session}")
        check(session.get("secure") is True, f"session cookie not Secure: {session}")
        check(session.get("sameSite") == "Strict", f"session cookie not SameSite=Strict: {session}")

        fleet = driver.find_element(By.ID, "fleet").text
        check(appliance in fleet, f"appliance {appliance} not in the fleet table: {fleet}")
        check("online" in fleet, f"appliance not shown online: {fleet}")
        driver.save_screenshot(os.path.join(out_dir, "console-fleet.png"))

        driver.find_element(By.LINK_TEXT, appliance).click()
        detail = wait_for_id(driver, "detail", "following the appliance link").text
        check("lab-appliance" in detail, f"detail page lacks the hostname: {detail}")

        driver.get(url + "/console/findings?appliance=" + appliance)
        findings = driver.find_element(By.ID, "findings").text
        check(title in findings, f"finding {title!r} not shown: {findings[:500]}")
        check("high" in findings, "severity not shown")
        driver.save_screenshot(os.path.join(out_dir, "console-findings.png"))

        driver.get(url + "/console/jobs")
        Select(driver.find_element(By.ID, "job-appliance")).select_by_value(appliance)
        Select(driver.find_element(By.ID, "job-kind")).select_by_value("net")
        driver.find_element(By.ID, "job-targets").send_keys("198.18.0.0/24")
        driver.find_element(By.ID, "job-ports").send_keys("22,80,443")
        driver.find_element(By.ID, "job-create").click()
        created = wait_for_id(driver, "created", "creating the job").text
        check(created.startswith("Job job-"), f"no creation notice: {created}")
        job_id = created.split()[1]
        jobs = driver.find_element(By.ID, "jobs").text
        check(job_id in jobs and "pending" in jobs, f"new job not listed as pending: {jobs}")
        driver.save_screenshot(os.path.join(out_dir, "console-jobs.png"))
        print(f"JOB_ID={job_id}")
    except Exception:
        # What the browser showed when a step failed, for the person reading the CI log.
        driver.save_screenshot(os.path.join(out_dir, "console-failure.png"))
        print(f"failed at {driver.current_url}; page source:\n{driver.page_source[:4000]}", file=sys.stderr)
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
