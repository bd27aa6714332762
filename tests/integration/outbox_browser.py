#!/usr/bin/python3
"""Load the demo's outbox page in headless Chromium and check that its
highlighting shows (tests/integration/test_demo.c starts `assent demo` and
calls this).

  outbox_browser.py --url URL --shot PNG

The page marks a protocol that is on with <span class="used">; the check is
what a person sees: the element's computed background differs from its
cell's and its text is bold, and the browser reported no Content Security
Policy violation (the page's one stylesheet is allowed by its hash).
Prints one JSON line with what it saw; exits non-zero on any failure.
"""
import argparse
import json
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def fail(msg, seen):
    seen["error"] = msg
    print(json.dumps(seen))
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--shot", required=True)
    args = ap.parse_args()
    seen = {}

    profile = tempfile.TemporaryDirectory(prefix="assent-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile.name}", "--window-size=1000,900"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(args.url)
        seen["title"] = driver.title
        marks = driver.find_elements(By.CSS_SELECTOR, "td span.used")
        seen["highlighted"] = len(marks)
        if not marks:
            fail("no highlighted protocol on the page", seen)
        style = driver.execute_script(
            "const s = arguments[0], c = s.closest('td');"
            "const a = getComputedStyle(s), b = getComputedStyle(c);"
            "return {bg: a.backgroundColor, cell_bg: b.backgroundColor,"
            " weight: a.fontWeight, text: s.textContent};", marks[0])
        seen["style"] = style
        if style["bg"] in ("rgba(0, 0, 0, 0)", "transparent") or style["bg"] == style["cell_bg"]:
            fail("the highlighted protocol has no background of its own", seen)
        if int(style["weight"]) < 600:
            fail("the highlighted protocol is not bold", seen)
        plain = driver.execute_script(
            "const c = [...document.querySelectorAll('td')].find(t => t.textContent === 'off');"
            "return c ? getComputedStyle(c).backgroundColor : null;")
        seen["off_bg"] = plain
        log = driver.get_log("browser")
        csp = [e["message"] for e in log if "Content Security Policy" in e.get("message", "")]
        seen["csp_violations"] = csp
        if csp:
            fail("the browser blocked part of the page", seen)
        driver.save_screenshot(args.shot)
        seen["screenshot"] = args.shot
    finally:
        driver.quit()
        profile.cleanup()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
