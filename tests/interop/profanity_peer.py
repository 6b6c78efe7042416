#!/usr/bin/env python3
"""The other side of the profanity interop run: slixmpp clients acting as bob, or as a
second resource of alice's (for carbons and the archive).

    profanity_peer.py HOST PORT CA_CERT bob-says TEXT     # bob writes to alice, waits for an answer
    profanity_peer.py HOST PORT CA_CERT laptop-says TEXT  # alice/laptop writes to bob

Exits 0 when its step happened; prints what it got.
"""
import asyncio
import ssl
import sys

import slixmpp

HOST, PORT, CA, WHAT, TEXT = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context(cafile=CA)
        self.got = asyncio.Queue()
        self.started = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler(
            "message", lambda m: self.got.put_nowait(m) if m["type"] in ("chat", "normal") else None
        )

    async def on_start(self, _):
        self.send_presence()
        await self.get_roster()
        self.started.set()

    def go(self):
        self.enable_direct_tls = False
        self.enable_plaintext = False
        self.connect(host=HOST, port=PORT)


async def main():
    if WHAT == "bob-says":
        c = Peer("bob@localhost/desk", "bob-pw")
    else:
        c = Peer("alice@localhost/laptop", "alice-pw")
    c.go()
    await asyncio.wait_for(c.started.wait(), 20)
    if WHAT == "bob-says":
        c.send_message(mto="alice@localhost", mbody=TEXT, mtype="chat")
        m = await asyncio.wait_for(c.got.get(), 60)
        print(f"bob got: {m['body']}")
    else:
        c.send_message(mto="bob@localhost", mbody=TEXT, mtype="chat")
        await asyncio.sleep(1)
        print("the laptop wrote to bob")
    c.disconnect()
    await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main())
