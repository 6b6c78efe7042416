#!/usr/bin/env python3
"""Interop with Converse.js, a web client, in headless Chromium: it logs in to lithosd over
XMPP on WebSocket (RFC 7395) and chats with a slixmpp client on TCP (STARTTLS, SCRAM).

Converse (from npm, tests/interop/converse) runs in Debian's Chromium, driven through
chromedriver by Selenium; the page exposes Converse's API to the test through a plugin.
Alice (Converse) opens a chat with Bob and types a message into the chat's text area; Bob
(slixmpp) receives it and answers; the answer shows in Alice's chat in the page.

    converse_interop.py PAGE_URL WS_URL C2S_HOST C2S_PORT CA_CERT

Accounts alice@localhost / alice-pw and bob@localhost / bob-pw must exist. Exits 0 when
every step happened, 1 otherwise (with the step that failed).
"""
import asyncio
import ssl
import sys
import time
import urllib.parse

import slixmpp
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

PAGE, WS, HOST, PORT, CA = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
TIMEOUT = 30


def fail(step, detail=""):
    print(f"FAILED: {step} {detail}")
    sys.exit(1)


async def wait_for(driver, step, script):
    # Polls without blocking the event loop: slixmpp writes and reads meanwhile.
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        await asyncio.sleep(0.1)
    logs = ""
    try:
        logs = "page text: " + repr(driver.execute_script("return document.body.innerText")[-2000:]) + "\n"
    except Exception:  # noqa: BLE001 - only for the report
        pass
    try:
        logs += "\n".join(str(e) for e in driver.get_log("browser")[-30:] if "conversejs.org" not in str(e))
    except Exception:  # noqa: BLE001 - the logs are only for the report
        pass
    fail(step, logs)


class Bob(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__("bob@localhost/slixmpp", "bob-pw")
        self.ssl_context = ssl.create_default_context(cafile=CA)
        self.messages = asyncio.Queue()
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", lambda m: self.messages.put_nowait(m))

    async def start(self, _):
        self.send_presence()
        self.ready.set()


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


async def main():
    bob = Bob()
    bob.connect(host=HOST, port=PORT)
    try:
        await asyncio.wait_for(bob.ready.wait(), TIMEOUT)
    except asyncio.TimeoutError:
        fail("bob (slixmpp, TCP) logs in")
    print("ok: bob logged in over TCP")

    driver = browser()
    try:
        query = urllib.parse.urlencode({"ws": WS, "jid": "alice@localhost", "password": "alice-pw"})
        driver.get(f"{PAGE}?{query}")
        await wait_for(driver, "Converse logs in over the WebSocket",
                 "return !!(window.lithosConverse && window.lithosConverse.api.connection.connected())")
        jid = driver.execute_script("return window.lithosConverse.session.get('jid')")
        if not jid or not jid.startswith("alice@localhost/"):
            fail("Converse bound a resource", jid)
        print(f"ok: Converse logged in over the WebSocket as {jid}")

        # Alice opens a chat with Bob and types into it, as a person would.
        driver.execute_script("window.lithosConverse.api.chats.open('bob@localhost', {}, true)")
        await wait_for(driver, "the chat opens", "return !!document.querySelector('converse-chat textarea.chat-textarea')")
        area = driver.find_element(By.CSS_SELECTOR, "converse-chat textarea.chat-textarea")
        area.send_keys("hello from Converse")
        area.send_keys(Keys.ENTER)
        try:
            while True:
                m = await asyncio.wait_for(bob.messages.get(), TIMEOUT)
                if m["type"] in ("chat", "normal") and m["body"]:
                    break
        except asyncio.TimeoutError:
            fail("bob receives Converse's message")
        if m["body"] != "hello from Converse" or m["from"].bare != "alice@localhost":
            fail("bob receives Converse's message", f"{m['from']}: {m['body']!r}")
        print("ok: bob received 'hello from Converse' over TCP")

        bob.send_message(mto=m["from"], mbody="hello from slixmpp", mtype="chat")
        await wait_for(driver, "Converse shows bob's answer",
                 "const c = document.querySelector('converse-chat');"
                 "return !!c && c.innerText.includes('hello from slixmpp')")
        print("ok: Converse showed bob's answer")
    finally:
        driver.quit()
        bob.disconnect()


asyncio.run(main())
print("converse interop: all steps passed")
