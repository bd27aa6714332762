#!/usr/bin/python3
"""Load an approval page in headless Chromium the way a link scanner does,
then decide in it the way a person does (tests/integration/test_web_browser.c
starts the server and the run, then calls this).

  web_browser.py --link URL --db PATH --assent BIN --shot PNG [--comment TEXT]
                 [--change JSON] [--command TEXT] [--details-order JSON]
                 [--expect TEXT]... [--absent TEXT]...

1. Load the page on a phone-sized window and idle: no script element, no
   auto-submitting form, so the approval must still be pending afterwards
   (checked through the store's interface: `assent approvals --all --json`
   and `assent show RUN --json` on the database).
2. Check the layout fits the phone width (no horizontal scrolling, buttons
   inside the viewport, labelled comment box) and save a screenshot.
   With --change / --command / --details-order / --expect / --absent, check
   what the page shows: the rows of the change table (Setting, Current,
   New), the exact command line, the order of the details' rows, texts
   that must appear and texts that must not.
3. Type a comment and click Approve; the confirmation page must say so.
Prints one JSON line with what it saw; exits non-zero on any failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PHONE_W, PHONE_H = 390, 844


def assent_json(args, *argv):
    """What `assent ARGV --json` prints about the database, parsed."""
    env = dict(os.environ, ASSENT_DB=args.db, ASSENT_LOG_LEVEL="warn")
    done = subprocess.run([args.assent, *argv, "--json"], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def approval_state(args):
    """The newest approval's status, every approver's status and the number
    of decisions in the runs' event logs, read with the assent CLI."""
    rows = assent_json(args, "approvals", "--all")
    rows.sort(key=lambda r: r["approval_id"])
    runs = sorted({r["run_id"] for r in rows})
    decisions = sum(1 for run in runs for ev in assent_json(args, "show", str(run))["events"]
                    if ev["type"] == "approval.decision")
    return {"approval": rows[-1]["status"] if rows else None,
            "approvers": ",".join(r["approver_status"] for r in rows) or None,
            "decisions": decisions}


def fail(msg, seen):
    seen["error"] = msg
    print(json.dumps(seen))
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--link", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--assent", required=True, help="the assent binary, to read the database")
    ap.add_argument("--shot", required=True)
    ap.add_argument("--comment", default="Checked in the browser.")
    ap.add_argument("--change", help="JSON [[setting, current, new], ...]")
    ap.add_argument("--command", help="the exact command line shown")
    ap.add_argument("--details-order", help="JSON [key, ...]: the details' rows in order")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--absent", action="append", default=[])
    args = ap.parse_args()
    seen = {}

    profile = tempfile.TemporaryDirectory(prefix="assent-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile.name}", f"--window-size={PHONE_W},{PHONE_H}"):
        opts.add_argument(flag)
    # Mobile emulation: a phone's viewport and device pixel ratio.
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("mobileEmulation", {
        "deviceMetrics": {"width": PHONE_W, "height": PHONE_H, "pixelRatio": 2.0},
        "userAgent": "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120 Mobile"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(30)
        # 1. Like a scanner: load, wait, leave.
        before = approval_state(args)
        driver.get(args.link)
        time.sleep(3)
        seen["title"] = driver.title
        seen["scripts"] = len(driver.find_elements(By.TAG_NAME, "script"))
        seen["forms"] = len(driver.find_elements(By.TAG_NAME, "form"))
        after_load = approval_state(args)
        seen["state_after_load"] = after_load
        if seen["scripts"] != 0:
            fail("the page has script elements", seen)
        if after_load != before or after_load["approval"] != "pending":
            fail("loading the page changed the approval", seen)
        # A reload and a second visit, as Safe Links does at click time.
        driver.get(args.link)
        time.sleep(1)
        if approval_state(args) != before:
            fail("reloading the page changed the approval", seen)

        # What the page shows of the request.
        if args.change:
            rows = []
            for tr in driver.find_elements(By.CSS_SELECTOR, "table.change tr"):
                cells = [c.text for c in tr.find_elements(By.XPATH, "./th|./td")]
                if tr.find_elements(By.XPATH, "./th[@scope='col']"):
                    seen["change_header"] = cells
                    continue
                rows.append(cells)
            seen["change"] = rows
            if seen.get("change_header") != ["Setting", "Current", "New"]:
                fail("the change table has no Setting | Current | New header", seen)
            if rows != json.loads(args.change):
                fail("the change table shows other rows", seen)
        if args.command:
            cmds = driver.find_elements(By.CSS_SELECTOR, "pre.command code")
            seen["command"] = cmds[0].text if cmds else None
            if seen["command"] != args.command:
                fail("the page shows another command", seen)
        if args.details_order:
            table = driver.find_element(
                By.XPATH, "//h2[normalize-space()='Details']/following-sibling::table[1]")
            keys = [th.text for th in table.find_elements(By.XPATH, "./tbody/tr/th|./tr/th")]
            seen["details_order"] = keys
            if keys != json.loads(args.details_order):
                fail("the details are not in the workflow's order", seen)
        text = driver.find_element(By.TAG_NAME, "body").text
        for t in args.expect:
            if t not in text:
                fail(f"the page does not show {t!r}", seen)
        for t in args.absent:
            if t in text:
                fail(f"the page shows {t!r}", seen)

        # 2. Layout on a phone.
        metrics = driver.execute_script(
            "return {sw: document.documentElement.scrollWidth, iw: window.innerWidth,"
            " lang: document.documentElement.lang,"
            " viewport: !!document.querySelector('meta[name=viewport]')};")
        seen["layout"] = metrics
        if metrics["sw"] > metrics["iw"]:
            fail("the page scrolls horizontally on a phone", seen)
        # A page wider than the phone is zoomed out to fit (the viewport
        # grows), which makes everything smaller and shifts taps.
        if metrics["iw"] > PHONE_W:
            fail("the page is wider than the phone and gets zoomed out", seen)
        for b in driver.find_elements(By.TAG_NAME, "button"):
            r = b.rect
            if r["x"] < 0 or r["x"] + r["width"] > metrics["iw"] + 1 or r["height"] < 40:
                fail(f"button {b.text!r} does not fit or is too small: {r}", seen)
        label = driver.find_element(By.CSS_SELECTOR, "label[for=comment]")
        if not label.text.startswith("Comment"):
            fail("the comment box has no label", seen)
        driver.save_screenshot(args.shot)
        seen["screenshot"] = args.shot
        # And the part with the buttons, scrolled into view.
        driver.find_element(By.CSS_SELECTOR, "button[value=approve]").location_once_scrolled_into_view
        form_shot = args.shot.replace(".png", "-form.png")
        driver.save_screenshot(form_shot)

        # 3. A person decides.
        driver.find_element(By.ID, "comment").send_keys(args.comment)
        driver.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        try:
            WebDriverWait(driver, 20).until(EC.title_contains("Thank you"))
        except Exception:
            seen["page_after_click"] = driver.page_source[:3000]
            seen["browser_log"] = driver.get_log("browser")
            fail("no confirmation page after clicking Approve", seen)
        body = driver.find_element(By.TAG_NAME, "body").text
        seen["after_click"] = body[:200]
        if "You approved" not in body:
            fail("the confirmation page does not say approved", seen)
        seen["state_after_click"] = approval_state(args)
        if seen["state_after_click"]["approval"] != "approved":
            fail("clicking Approve did not approve", seen)
    finally:
        driver.quit()
        profile.cleanup()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
