#!/usr/bin/python3
"""Follow a campaign through the admin console in headless Chromium
(tests/integration/test_console_browser.c starts the simulator and the
server, then calls this, then checks the mailboxes in the simulator).

  console_browser.py --url URL --token TOKEN --mail-dir DIR --approver EMAIL --shots DIR

1. /console/ leads to the login page; sign in with the token; the overview
   shows the KPI's chart (an <svg> element) and no script element.
2. Users: filter with the `where` language, tick the first two users, open
   the bulk action: the preview shows one Set-CASMailbox line for each;
   give the approver and start the change: two runs start.
3. The approval emails (the file transport's .eml files in --mail-dir) hold
   one link per run: open each and click Approve.
4. Exceptions: grant one, see it listed, remove it with a reason.
5. The KPI's page: the chart with its deadline; a trigger previewed.
6. Workflows: validate an invalid workflow; the error shows at its line.
The browser must report no Content Security Policy violation.  Screenshots
go to --shots/console-*.png.  Prints one JSON line ({"users", "runs", ...});
exits non-zero on any failure.  Waits are bounded polls with generous limits.
"""
import argparse
import email
import email.policy
import glob
import json
import os
import re
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 300
FILTER = "pop_enabled || imap_enabled"

# An invalid workflow: the step type on line 6 does not exist.
BAD_WORKFLOW = """{
  "name": "broken",
  "version": "1",
  "steps": {
    "first": {
      "type": "aproval",
      "params": {}
    }
  }
}
"""
BAD_LINE = 6


def fail(msg, seen, driver=None, shots=None):
    seen["error"] = msg
    if driver is not None and shots:
        try:
            driver.save_screenshot(os.path.join(shots, "console-failure.png"))
            seen["page"] = driver.find_element(By.TAG_NAME, "body").text[:3000]
        except Exception:  # the report matters more than the screenshot
            pass
    print(json.dumps(seen))
    sys.exit(1)


def settle(driver, cond):
    """Wait (bounded, generously) until cond(driver) holds after a click
    started a navigation; True when it did."""
    try:
        WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(cond)
        return True
    except TimeoutException:
        return False


def approval_links(mail_dir, approver, url):
    """The approval links in the emails to approver, oldest first."""
    links = []
    for path in sorted(glob.glob(os.path.join(mail_dir, "*.eml")), key=os.path.getmtime):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        if approver not in str(msg.get("To", "")):
            continue
        if not str(msg.get("Subject", "")).startswith("Approval requested"):
            continue
        part = msg.get_body(preferencelist=("plain",))
        text = part.get_content() if part else ""
        for link in re.findall(re.escape(url) + r"/a/[A-Za-z0-9_-]{43}", text):
            if link not in links:
                links.append(link)
    return links


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--mail-dir", required=True)
    ap.add_argument("--approver", required=True)
    ap.add_argument("--shots", required=True)
    args = ap.parse_args()
    seen = {}
    shot = lambda name: driver.save_screenshot(os.path.join(args.shots, f"console-{name}.png"))

    profile = tempfile.TemporaryDirectory(prefix="assent-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile.name}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(120)
        # 1. Sign in.
        driver.get(args.url + "/console/")
        if not driver.current_url.endswith("/console/login"):
            fail("/console/ did not lead to the login page: " + driver.current_url, seen, driver,
                 args.shots)
        driver.find_element(By.ID, "token").send_keys(args.token)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        settle(driver, lambda d: d.current_url.endswith("/console/overview"))
        if not driver.current_url.endswith("/console/overview"):
            fail("signing in did not lead to the overview: " + driver.current_url, seen, driver,
                 args.shots)
        charts = driver.find_elements(By.CSS_SELECTOR, "section.kpi svg")
        seen["charts"] = len(charts)
        if not charts:
            fail("the overview shows no KPI chart", seen, driver, args.shots)
        if not driver.find_elements(By.CSS_SELECTOR, "section.kpi svg polyline.values, "
                                                     "section.kpi svg circle"):
            fail("the KPI chart has no values", seen, driver, args.shots)
        if driver.find_elements(By.TAG_NAME, "script"):
            fail("a console page has a script element", seen, driver, args.shots)
        shot("overview")

        # 2. Users: pages continue after the last user of the page before
        # (a keyset cursor); then filter, tick two, preview, start.
        driver.get(args.url + "/console/users?limit=15")
        first = [b.get_attribute("value") for b in
                 driver.find_elements(By.CSS_SELECTOR, "table.users input[type=checkbox]")]
        driver.find_element(By.CSS_SELECTOR, "a.next").click()
        settle(driver, lambda d: "after=" in d.current_url)
        second = [b.get_attribute("value") for b in
                  driver.find_elements(By.CSS_SELECTOR, "table.users input[type=checkbox]")]
        seen["pages"] = [len(first), len(second)]
        if len(first) != 15 or not second or not all(
                u.lower() > first[-1].lower() for u in second) or \
                [u.lower() for u in second] != sorted(u.lower() for u in second):
            fail("the second page does not continue after the first", seen, driver, args.shots)
        driver.get(args.url + "/console/users")
        where = driver.find_element(By.ID, "where")
        where.clear()
        where.send_keys(FILTER)
        driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        settle(driver, lambda d: "where=" in d.current_url)
        if "where=" not in driver.current_url:
            fail("the filter was not applied", seen, driver, args.shots)
        boxes = driver.find_elements(By.CSS_SELECTOR, "table.users input[type=checkbox]")
        seen["filtered_rows"] = len(boxes)
        if len(boxes) < 2:
            fail("the filter found fewer than two users", seen, driver, args.shots)
        # Every row the filter shows has POP or IMAP on.
        headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.users tr th")]
        pop_i, imap_i = headers.index("POP"), headers.index("IMAP")
        for tr in driver.find_elements(By.CSS_SELECTOR, "table.users tr")[1:]:
            cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            if "on" not in (cells[pop_i], cells[imap_i]):
                fail("the filtered report shows a user with POP and IMAP off", seen, driver,
                     args.shots)
        users = [b.get_attribute("value") for b in boxes[:2]]
        seen["users"] = users
        for b in boxes[:2]:
            b.click()
        shot("users")
        driver.find_element(By.CSS_SELECTOR, "button[name=action][value=preview]").click()
        settle(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "pre.commands"))
        commands = driver.find_element(By.CSS_SELECTOR, "pre.commands").text
        seen["commands"] = commands
        for u in users:
            if f"Set-CASMailbox -Identity '{u}'" not in commands:
                fail(f"the preview has no Set-CASMailbox line for {u}", seen, driver, args.shots)
        if commands.count("Set-CASMailbox") != 2:
            fail("the preview does not show exactly two commands", seen, driver, args.shots)
        shot("preview")
        driver.find_element(By.ID, "approvers").send_keys(args.approver)
        driver.find_element(By.CSS_SELECTOR, "button[name=action][value=start]").click()
        settle(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.started"))
        rows = driver.find_elements(By.CSS_SELECTOR, "table.started tr")[1:]
        runs = []
        for tr in rows:
            cells = tr.find_elements(By.TAG_NAME, "td")
            if cells[1].text != "started":
                fail(f"{cells[0].text}: {cells[1].text}", seen, driver, args.shots)
            runs.append(int(cells[2].text.lstrip("#")))
        seen["runs"] = runs
        if len(runs) != 2:
            fail("two runs did not start", seen, driver, args.shots)
        shot("started")

        # 3. Approve both from the links the approver got by email.
        deadline = time.time() + WAIT_S
        links = []
        while time.time() < deadline:
            links = approval_links(args.mail_dir, args.approver, args.url)
            if len(links) >= 2:
                break
            time.sleep(0.5)
        seen["links"] = len(links)
        if len(links) < 2:
            fail("the approver did not get two approval links", seen, driver, args.shots)
        for link in links[:2]:
            driver.get(link)
            driver.find_element(By.CSS_SELECTOR, "button.approve").click()
            settle(driver, lambda d: "Thank you" in d.title)
            if "Thank you" not in driver.title:
                fail("approving did not say Thank you: " + driver.title, seen, driver, args.shots)
        shot("approved")
        # The runs go on; the console shows them (the C side waits for the end).
        driver.get(args.url + "/console/approvals?status=decided")
        decided = driver.find_elements(By.CSS_SELECTOR, "table.approvals tr")[1:]
        seen["decided"] = len(decided)
        if len(decided) < 2:
            fail("the console does not list the two decided approvals", seen, driver, args.shots)

        # 4. An exception: grant, see, remove.
        driver.get(args.url + "/console/exceptions")
        driver.find_element(By.ID, "ex-user").send_keys("printer@contoso.com")
        driver.find_element(By.CSS_SELECTOR, "input[name='p.smtp']").click()
        driver.find_element(By.ID, "ex-reason").send_keys("scan to mail until the new MFP")
        driver.find_element(By.CSS_SELECTOR, "#ex-reason").submit()
        settle(driver, lambda d: "done=" in d.current_url)
        if "exception_added" not in driver.current_url:
            fail("granting the exception did not succeed", seen, driver, args.shots)
        table = driver.find_element(By.CSS_SELECTOR, "table.exceptions").text
        if "printer@contoso.com" not in table or "scan to mail" not in table:
            fail("the new exception is not listed", seen, driver, args.shots)
        shot("exception")
        row = [tr for tr in driver.find_elements(By.CSS_SELECTOR, "table.exceptions tr")
               if "printer@contoso.com" in tr.text][0]
        row.find_element(By.NAME, "reason").send_keys("printer replaced")
        row.find_element(By.CSS_SELECTOR, "button.danger").click()
        settle(driver, lambda d: "exception_removed" in d.current_url)
        if "exception_removed" not in driver.current_url:
            fail("removing the exception did not succeed", seen, driver, args.shots)
        if "printer@contoso.com" in driver.find_element(By.CSS_SELECTOR, "table.exceptions").text:
            fail("the removed exception is still in force", seen, driver, args.shots)

        # 5. The KPI's page: its chart; a trigger previewed starts nothing.
        driver.get(args.url + "/console/kpis/legacy-enabled")
        if not driver.find_elements(By.CSS_SELECTOR, "svg line.deadline"):
            fail("the KPI's chart has no deadline", seen, driver, args.shots)
        driver.find_element(By.CSS_SELECTOR, "form[action$='/trigger'] button").click()
        settle(driver, lambda d: "Trigger preview" in d.title)
        notice = driver.find_element(By.CSS_SELECTOR, "p.notice").text
        seen["trigger_preview"] = notice
        if "would start" not in notice or not driver.find_elements(
                By.CSS_SELECTOR, "table.triggered tr td"):
            fail("the trigger's preview lists no rows", seen, driver, args.shots)

        # 6. An invalid workflow: the error at its line.
        driver.get(args.url + "/console/workflows/validate")
        area = driver.find_element(By.ID, "workflow")
        driver.execute_script("arguments[0].value = arguments[1];", area, BAD_WORKFLOW)
        driver.find_element(By.ID, "validate").click()
        settle(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.diagnostics"))
        diag_rows = driver.find_elements(By.CSS_SELECTOR, "table.diagnostics tr")[1:]
        seen["diagnostics"] = [tr.text for tr in diag_rows]
        if not any(tr.find_elements(By.TAG_NAME, "td")[0].text == str(BAD_LINE)
                   for tr in diag_rows):
            fail(f"no diagnostic at line {BAD_LINE}", seen, driver, args.shots)
        marked = driver.find_element(By.ID, f"line-{BAD_LINE}")
        if "line-bad" not in (marked.get_attribute("class") or "") or \
                "aproval" not in marked.text:
            fail(f"line {BAD_LINE} is not marked with its error", seen, driver, args.shots)
        shot("validate")
        # The same workflow as an uploaded file.
        upload = os.path.join(profile.name, "broken.json")
        with open(upload, "w") as f:
            f.write(BAD_WORKFLOW)
        driver.get(args.url + "/console/workflows/validate")
        driver.find_element(By.ID, "workflow_file").send_keys(upload)
        driver.find_element(By.ID, "validate").click()
        settle(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.diagnostics"))
        marked = driver.find_elements(By.CSS_SELECTOR, f"#line-{BAD_LINE}.line-bad")
        if not marked or "aproval" not in marked[0].text:
            fail(f"the uploaded workflow's line {BAD_LINE} is not marked", seen, driver,
                 args.shots)

        log = driver.get_log("browser")
        csp = [e["message"] for e in log if "Content Security Policy" in e.get("message", "")]
        seen["csp_violations"] = csp
        if csp:
            fail("the browser blocked part of a page", seen, driver, args.shots)
    finally:
        driver.quit()
        profile.cleanup()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
