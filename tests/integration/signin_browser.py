#!/usr/bin/python3
"""Sign in with Entra ID in headless Chromium (tests/integration/
test_signin_browser.c starts the tenant simulator as the OpenID provider,
`assent serve` with sign_in: entra and a run whose approval step has
require_sign_in, then calls this, then checks the store).

  signin_browser.py --link URL --sim URL --approver UPN --other UPN --admin UPN
                    --password PW --db DB --assent BIN --run ID --shots DIR

The simulator is reached under another host name than Assent (localhost
against 127.0.0.1): another site, as login.microsoftonline.com is for a
real deployment, so that SameSite cookies behave as they will there.

1. The approval link shows a sign-in page: no decision form, no script;
   loading it decides nothing (`assent show RUN --json`, `assent approvals`).
2. "Sign in with Microsoft": Assent's forwarding page goes on by itself to
   the simulator's sign-in form; sign in as --other.  The callback answers
   403 "Signed in as OTHER; this request is for APPROVER"; nothing decided.
3. In the same browser (the simulator keeps no session of its own, as after
   signing out of Microsoft): open the link again and sign in as
   --approver; the callback's page goes on by itself to the link, which
   now shows the form and "Signed in as APPROVER".  Approve: "Thank you".
4. A fresh browser profile: the console's login page, "Sign in with
   Microsoft" as --admin (app role Assent.Admin): the overview, as admin.
The browser must report no Content Security Policy violation, and no
navigation may repeat (a redirect loop).  Screenshots go to
--shots/signin-*.png.  Prints one JSON line with what it saw; exits
non-zero on any failure.  Waits are bounded polls with generous limits
that end as soon as the condition holds.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 300


class Failure(Exception):
    pass


def assent_json(args, *argv):
    """What `assent ARGV --json` prints about the database, parsed."""
    env = dict(os.environ, ASSENT_DB=args.db, ASSENT_LOG_LEVEL="warn")
    done = subprocess.run([args.assent, *argv, "--json"], env=env, capture_output=True,
                          text=True, timeout=WAIT_S, check=True)
    return json.loads(done.stdout)


def store_state(args):
    """The run's status, its approval's and approver's status and its
    decision events, read with the assent CLI."""
    show = assent_json(args, "show", str(args.run))
    rows = [r for r in assent_json(args, "approvals", "--all") if r["run_id"] == args.run]
    return {"run": show.get("run", {}).get("status") if isinstance(show.get("run"), dict)
            else show.get("status"),
            "approval": [r["status"] for r in rows],
            "approver": [r["approver_status"] for r in rows],
            "decisions": [ev for ev in show.get("events", [])
                          if ev.get("type") == "approval.decision"]}


class Browser:
    """One headless Chromium with its own profile; every document's status
    taken from the performance log."""

    def __init__(self, args, name):
        self.args = args
        self.profile = tempfile.TemporaryDirectory(prefix="assent-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-dev-shm-usage",
                     f"--user-data-dir={self.profile.name}", "--window-size=1000,900"):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        self.driver.set_page_load_timeout(WAIT_S)
        self.name = name
        self.documents = []  # (url, status) of every top-level document, in order
        self.console = []    # the browser's console messages

    def quit(self):
        try:
            self.driver.quit()
        finally:
            self.profile.cleanup()

    def collect(self):
        for e in self.driver.get_log("performance"):
            try:
                m = json.loads(e["message"])["message"]
            except (KeyError, ValueError):
                continue
            if m.get("method") != "Network.responseReceived":
                continue
            p = m.get("params", {})
            if p.get("type") == "Document":
                self.documents.append((p["response"]["url"], p["response"]["status"]))
        self.console += [e.get("message", "") for e in self.driver.get_log("browser")]

    def status_of(self, prefix):
        """The status of the last document whose URL starts with prefix."""
        self.collect()
        found = [st for url, st in self.documents if url.startswith(prefix)]
        return found[-1] if found else None

    def shot(self, what):
        self.driver.save_screenshot(os.path.join(self.args.shots, f"signin-{what}.png"))

    def settle(self, cond):
        """Wait (bounded, generously) until cond(driver) holds; True when it did."""
        try:
            WebDriverWait(self.driver, WAIT_S, poll_frequency=0.2).until(cond)
            return True
        except TimeoutException:
            return False

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def sign_in_at_provider(b, args, upn, seen, what):
    """From a page with "Sign in with Microsoft": click it, let Assent's
    forwarding page go on to the simulator, sign in as upn there."""
    d = b.driver
    buttons = [e for e in d.find_elements(By.CSS_SELECTOR, "form[action='/auth/login'] button")
               if "Sign in with Microsoft" in e.text]
    check(buttons, f"{what}: no 'Sign in with Microsoft' button")
    buttons[0].click()
    # The forwarding page must go on by itself (no click on its link).
    if not b.settle(lambda dr: dr.current_url.startswith(args.sim)
                    and dr.find_elements(By.ID, "passwd")):
        seen[what + "_stuck_at"] = [d.current_url, d.title]
        b.shot(what + "-stuck")
        raise Failure(f"{what}: Assent's page did not go on to the provider's sign-in form")
    seen[what + "_login_status"] = b.status_of(args.url + "/auth/login")
    check(seen[what + "_login_status"] == 200, f"{what}: POST /auth/login did not answer 200")
    d.find_element(By.ID, "login").send_keys(upn)
    d.find_element(By.ID, "passwd").send_keys(args.password)
    b.shot(what + "-provider")
    d.find_element(By.ID, "signin").click()
    # Back at Assent's callback (and, when it forwards, beyond).
    if not b.settle(lambda dr: dr.current_url.startswith(args.url) and
                    "/auth/login" not in dr.current_url):
        seen[what + "_stuck_at"] = [d.current_url, d.title]
        b.shot(what + "-stuck")
        raise Failure(f"{what}: the provider did not return to Assent")


def no_loop(b, what):
    """No document was loaded twice in a row (a redirect or refresh loop)."""
    b.collect()
    urls = [u for u, _ in b.documents]
    for i in range(1, len(urls)):
        check(urls[i] != urls[i - 1] or "/auth/" not in urls[i],
              f"{what}: {urls[i]} loaded twice in a row")


def approval_part(args, seen):
    b = Browser(args, "approval")
    try:
        d = b.driver
        before = store_state(args)
        seen["before"] = before
        check(before["run"] == "waiting" and before["approval"] == ["pending"],
              "the run does not wait on a pending approval")

        # 1. The link: a sign-in page, no form to decide, nothing decided.
        d.get(args.link)
        seen["link_status"] = b.status_of(args.link)
        seen["link_title"] = d.title
        check(seen["link_status"] == 200, "the link did not answer 200")
        check(d.find_elements(By.ID, "sign-in-needed"), "the link does not ask to sign in")
        check(args.approver in b.text(), "the sign-in page does not name the approver")
        check(not d.find_elements(By.CSS_SELECTOR, "[name=decision], [name=csrf]"),
              "the sign-in page has a decision form")
        check(not d.find_elements(By.TAG_NAME, "script"), "the sign-in page has a script")
        b.shot("link")
        d.get(args.link)  # a second look, as a link scanner would
        check(store_state(args) == before, "opening the link changed the store")

        # 2. The wrong person signs in.
        sign_in_at_provider(b, args, args.other, seen, "wrong")
        b.settle(lambda dr: dr.find_elements(By.TAG_NAME, "h1"))
        seen["wrong_url"] = d.current_url.split("?")[0]
        seen["wrong_status"] = b.status_of(args.url + "/auth/callback")
        seen["wrong_title"] = d.title
        seen["wrong_text"] = b.text()[:600]
        b.shot("wrong-user")
        check(seen["wrong_status"] == 403, "the wrong user's callback did not answer 403")
        check(f"signed in as {args.other}; this request is for {args.approver}"
              in seen["wrong_text"], "the 403 page does not name both people")
        check(not d.find_elements(By.CSS_SELECTOR, "[name=decision]"),
              "the wrong user sees a decision form")
        after = store_state(args)
        seen["after_wrong"] = after
        check(after == before, "the wrong user's sign-in changed the approval or the run")
        # The link again in this browser: still only the sign-in page.
        d.get(args.link)
        check(d.find_elements(By.ID, "sign-in-needed") and
              not d.find_elements(By.CSS_SELECTOR, "[name=decision]"),
              "after the wrong user's sign-in the link shows more than the sign-in page")

        # 3. The approver signs in in the same browser, and approves.
        sign_in_at_provider(b, args, args.approver, seen, "approver")
        if not b.settle(lambda dr: dr.current_url == args.link and
                        dr.find_elements(By.ID, "signed-in")):
            seen["approver_stuck_at"] = [d.current_url, d.title, b.text()[:600]]
            b.shot("approver-stuck")
            raise Failure("the approver's sign-in did not go on to the approval form")
        seen["callback_status"] = b.status_of(args.url + "/auth/callback")
        seen["form_status"] = b.status_of(args.link)
        seen["signed_in_note"] = d.find_element(By.ID, "signed-in").text
        check(seen["callback_status"] == 200 and seen["form_status"] == 200,
              "the approver's callback or form did not answer 200")
        check(args.approver in seen["signed_in_note"], "the form does not say who signed in")
        check(store_state(args) == before, "the approver's sign-in decided something")
        b.shot("approver-form")
        comment = d.find_elements(By.CSS_SELECTOR, "textarea[name=comment]")
        if comment:
            comment[0].send_keys("Approved after signing in.")
        d.find_element(By.CSS_SELECTOR, "button.approve[name=decision]").click()
        if not b.settle(lambda dr: "Thank you" in dr.title):
            seen["approve_stuck_at"] = [d.current_url, d.title, b.text()[:600]]
            b.shot("approve-stuck")
            raise Failure("approving did not say Thank you")
        seen["approved_status"] = b.status_of(args.link)
        check(seen["approved_status"] == 200, "the decision did not answer 200")
        b.shot("approved")
        no_loop(b, "approval")
        seen["approval_documents"] = b.documents
        seen["approval_console"] = b.console
    finally:
        b.quit()


def console_part(args, seen):
    b = Browser(args, "console")
    try:
        d = b.driver
        d.get(args.url + "/console/")
        check(d.current_url.endswith("/console/login"), "/console/ did not lead to the login page")
        sign_in_at_provider(b, args, args.admin, seen, "console")
        if not b.settle(lambda dr: dr.current_url.endswith("/console/overview")):
            seen["console_stuck_at"] = [d.current_url, d.title, b.text()[:600]]
            b.shot("console-stuck")
            raise Failure("the console sign-in did not reach the overview")
        seen["overview_status"] = b.status_of(args.url + "/console/overview")
        seen["overview_text"] = b.text()[:400]
        check(seen["overview_status"] == 200, "the overview did not answer 200")
        check(args.admin in seen["overview_text"], "the overview does not name who signed in")
        check("admin" in seen["overview_text"], "the overview does not show the admin role")
        b.shot("console-overview")
        # An admin-only page.
        d.get(args.url + "/console/tokens")
        seen["tokens_status"] = b.status_of(args.url + "/console/tokens")
        check(seen["tokens_status"] == 200, "the admin cannot open the tokens page")
        no_loop(b, "console")
        seen["console_documents"] = b.documents
        seen["console_console"] = b.console
    finally:
        b.quit()


def main():
    ap = argparse.ArgumentParser()
    for name in ("link", "url", "sim", "approver", "other", "admin", "password", "db",
                 "assent", "shots"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--run", required=True, type=int)
    args = ap.parse_args()
    seen = {}
    try:
        approval_part(args, seen)
        console_part(args, seen)
        csp = [m for m in seen.get("approval_console", []) + seen.get("console_console", [])
               if "Content Security Policy" in m or "Refused to" in m]
        seen["csp_violations"] = csp
        check(not csp, "the browser blocked part of a page")
    except Failure as e:
        seen["error"] = str(e)
        print(json.dumps(seen))
        sys.exit(1)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
