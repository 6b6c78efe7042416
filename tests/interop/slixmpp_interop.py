#!/usr/bin/env python3
"""Interop with a real third-party client: two slixmpp clients against a running lithosd.

They log in over STARTTLS with SCRAM, subscribe to each other, see each other's presence,
exchange messages, and one receives a message sent while it was offline; then one publishes
a vCard the other reads (XEP-0054, slixmpp's xep_0054) and stores bookmarks in private
storage and reads them back (XEP-0049, through slixmpp's xep_0048); last, a third client
enables stream management (XEP-0198, slixmpp's xep_0198), has its stanzas acknowledged and
acknowledges the server's, loses its connection without closing the stream, and resumes the
session, receiving what was sent to it meanwhile; and two resources of one account enable
message carbons (XEP-0280, slixmpp's xep_0280), each seeing the chats the other sends and
receives; last, one blocks the other (XEP-0191, slixmpp's xep_0191), whose message then
bounces, and unblocks; and one pages its message archive (XEP-0313, slixmpp's xep_0313)
two messages at a time; then a multi-user chat (XEP-0045, slixmpp's xep_0045): juliet
creates and configures a room, invites romeo, who joins; groupchat, the subject, a private
message, a kick, history when romeo comes back, and his leaving; then personal eventing
(XEP-0163 with slixmpp's xep_0115 capabilities): juliet's avatar (XEP-0084) reaches romeo by
+notify, her bookmarks (XEP-0402) stay hers, and a node on pubsub.localhost (XEP-0060) is
created, subscribed to and published to. With --component PORT, a slixmpp ComponentXMPP attaches as
echo.localhost (XEP-0114, secret echo-secret-1) and echoes what an account sends to any
address of its domain; the server lists it in its disco#items.

    slixmpp_interop.py HOST PORT CA_CERT [--echo-bot] [--component PORT]

Accounts juliet@localhost / juliet-pw and romeo@localhost / romeo-pw must exist. With
--echo-bot, the echo-bot example runs as bot@localhost, and romeo checks that it answers.
Exits 0 when every step happened, 1 otherwise (with the step that failed).
"""
import asyncio
import logging
import ssl
import sys

import slixmpp
from slixmpp import JID
from slixmpp.plugins.xep_0048 import Bookmarks

HOST, PORT, CA = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ECHO_BOT = "--echo-bot" in sys.argv[4:]
COMPONENT_PORT = int(sys.argv[sys.argv.index("--component") + 1]) if "--component" in sys.argv else None
STEP_TIMEOUT = 20


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, sm=False, pep=False):
        super().__init__(jid, password)
        self.ssl_context = ssl.create_default_context(cafile=CA)
        self.messages = asyncio.Queue()
        self.available = asyncio.Queue()
        self.auth_mech = None
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence_available", self.on_available)
        self.add_event_handler("auth_success", self.on_auth)
        self.started = asyncio.Event()
        self.register_plugin("xep_0203")
        self.register_plugin("xep_0054")
        self.register_plugin("xep_0048")
        self.register_plugin("xep_0280")
        self.register_plugin("xep_0191")
        self.register_plugin("xep_0313")
        self.errors = asyncio.Queue()
        self.add_event_handler("message_error", lambda m: self.errors.put_nowait(m))
        self.groupchat = asyncio.Queue()
        self.add_event_handler("groupchat_message", lambda m: self.groupchat.put_nowait(m))
        self.subjects = asyncio.Queue()
        self.add_event_handler("groupchat_subject", lambda m: self.subjects.put_nowait(m))
        self.room_presence = asyncio.Queue()
        self.add_event_handler("groupchat_presence", lambda p: self.room_presence.put_nowait(p))
        self.invites = asyncio.Queue()
        self.add_event_handler("groupchat_invite", lambda m: self.invites.put_nowait(m))
        self.register_plugin("xep_0045")
        self.carbons = asyncio.Queue()
        self.add_event_handler("carbon_received", lambda m: self.carbons.put_nowait(("received", m)))
        self.add_event_handler("carbon_sent", lambda m: self.carbons.put_nowait(("sent", m)))
        if sm:
            self.register_plugin("xep_0198")
        if pep:
            # Capabilities (XEP-0115) in every presence; avatar metadata (XEP-0084) asked
            # for with +notify (XEP-0163).
            for plugin in ("xep_0060", "xep_0115", "xep_0163", "xep_0084"):
                self.register_plugin(plugin)
            self.avatars = asyncio.Queue()
            self.add_event_handler("avatar_metadata_publish", lambda m: self.avatars.put_nowait(m))
            self.published = asyncio.Queue()
            self.add_event_handler("pubsub_publish", lambda m: self.published.put_nowait(m))
        self.roster.auto_authorize = True
        self.roster.auto_subscribe = True

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        self.started.set()

    def on_auth(self, _):
        self.auth_mech = self.plugin["feature_mechanisms"].mech.name if "feature_mechanisms" in self.plugin else None

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            self.messages.put_nowait(msg)

    def on_available(self, pres):
        self.available.put_nowait(str(pres["from"].bare))

    def start(self):
        # STARTTLS on the given port only (no direct TLS, never plaintext).
        self.enable_starttls = True
        self.enable_direct_tls = False
        self.enable_plaintext = False
        self.connect(host=HOST, port=PORT)


async def wait(coro, what):
    try:
        return await asyncio.wait_for(coro, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        print(f"FAILED: timed out waiting for {what}")
        sys.exit(1)


async def until_available(client, who):
    while True:
        got = await client.available.get()
        if got == who:
            return


async def until(predicate, what):
    async def poll():
        while not predicate():
            await asyncio.sleep(0.2)
    await wait(poll(), what)


async def stream_management(romeo):
    phone = Client("juliet@localhost/phone", "juliet-pw", sm=True)
    enabled, resumed = asyncio.Event(), asyncio.Event()
    phone.add_event_handler("sm_enabled", lambda _: enabled.set())
    phone.add_event_handler("session_resumed", lambda _: resumed.set())
    phone.start()
    await wait(phone.started.wait(), "the stream-managed session")
    await wait(enabled.wait(), "stream management to be enabled")
    sm = phone.plugin["xep_0198"]
    assert sm.sm_id, "no resumption id"
    # Our stanzas acknowledged: slixmpp asks every 5 it sends; the server answers.
    for i in range(6):
        phone.send_message(mto="romeo@localhost", mbody=f"counted {i}", mtype="chat")
    # (slixmpp writes <r/> straight to the socket, ahead of stanzas still in its send queue:
    # ask until the answer covers them all.)
    def acknowledged():
        if sm.unacked_queue:
            sm.request_ack()
        return not sm.unacked_queue
    await until(acknowledged, "the server to acknowledge every stanza")
    for _ in range(6):
        await wait(romeo.messages.get(), "romeo to receive the counted messages")
    # The server's stanzas counted: slixmpp answers the server's requests with its count.
    for i in range(5):
        romeo.send_message(mto="juliet@localhost/phone", mbody=f"to the phone {i}", mtype="chat")
    for _ in range(5):
        await wait(phone.messages.get(), "the phone to receive romeo's messages")
    assert sm.handled >= 5, sm.handled
    print(f"stream management enabled (XEP-0198); {sm.last_ack} stanzas acknowledged by the server, {sm.handled} handled")

    # The connection is cut, without </stream>; a message arrives meanwhile; the session resumes.
    phone.abort()
    await wait(phone.disconnected, "the cut")
    romeo.send_message(mto="juliet@localhost/phone", mbody="while the link was down", mtype="chat")
    await asyncio.sleep(0.5)
    phone.connect(host=HOST, port=PORT)
    await wait(resumed.wait(), "the session to resume")
    m = await wait(phone.messages.get(), "the message sent while the link was down")
    assert m["body"] == "while the link was down", m
    await asyncio.sleep(0.5)
    assert phone.messages.empty(), "a message was delivered twice"
    print("connection cut and session resumed (XEP-0198): the message sent meanwhile arrived once")
    phone.disconnect()


async def with_body(queue, body):
    while True:
        m = await queue.get()
        if m["body"] == body:
            return m


async def carbons(balcony, romeo):
    laptop = Client("juliet@localhost/laptop", "juliet-pw")
    laptop.start()
    await wait(laptop.started.wait(), "juliet's laptop session")
    await wait(balcony.plugin["xep_0280"].enable(), "carbons on the balcony")
    await wait(laptop.plugin["xep_0280"].enable(), "carbons on the laptop")
    # Received: romeo writes to the balcony; the laptop gets a copy.
    romeo.send_message(mto="juliet@localhost/balcony", mbody="A copy for your laptop", mtype="chat")
    # (The balcony may first get the phone's last message: the phone closed its stream
    # without acknowledging it, so the server delivered it again, to the account.)
    await wait(with_body(balcony.messages, "A copy for your laptop"), "the balcony to get romeo's message")
    kind, m = await wait(laptop.carbons.get(), "the laptop's received carbon")
    assert kind == "received" and m["carbon_received"]["body"] == "A copy for your laptop", m
    assert str(m["from"]) == "juliet@localhost", m
    # Sent, the other way: the laptop writes to romeo; the balcony gets a copy.
    laptop.send_message(mto="romeo@localhost/orchard", mbody="Sent from the laptop", mtype="chat")
    await wait(with_body(romeo.messages, "Sent from the laptop"), "romeo to get the laptop's message")
    kind, m = await wait(balcony.carbons.get(), "the balcony's sent carbon")
    assert kind == "sent" and m["carbon_sent"]["body"] == "Sent from the laptop", m
    assert str(m["carbon_sent"]["to"]) == "romeo@localhost/orchard", m
    print("message carbons (XEP-0280): received and sent copies between two resources")
    laptop.disconnect()


async def blocking(juliet, romeo):
    block = juliet.plugin["xep_0191"]
    await wait(block.block([JID("romeo@localhost")]), "juliet to block romeo")
    blocked = await wait(block.get_blocked_jids(), "juliet's blocklist")
    assert blocked == {JID("romeo@localhost")}, blocked
    romeo.send_message(mto="juliet@localhost/balcony", mbody="Are you there?", mtype="chat")
    e = await wait(romeo.errors.get(), "romeo's message to bounce")
    assert e["error"]["condition"] == "service-unavailable", e
    await wait(block.unblock([JID("romeo@localhost")]), "juliet to unblock romeo")
    romeo.send_message(mto="juliet@localhost/balcony", mbody="And now?", mtype="chat")
    await wait(with_body(juliet.messages, "And now?"), "romeo's message after the unblock")
    print("blocking command (XEP-0191): a blocked contact's message bounced, then got through once unblocked")


async def archive(juliet):
    async def page_through():
        got = []
        async for m in juliet.plugin["xep_0313"].iterate(with_jid=JID("romeo@localhost"), rsm={"max": 2}):
            got.append(m["mam_result"]["forwarded"]["stanza"]["body"])
        return got
    bodies = await wait(page_through(), "juliet to page her archive")
    # What juliet and romeo wrote each other, oldest first (the blocked message is not there).
    assert bodies[0] == "Wherefore art thou Romeo?", bodies
    assert "By a name I know not how to tell thee." in bodies, bodies
    assert "Sent while you were away" in bodies, bodies
    assert "And now?" == bodies[-1], bodies
    assert "Are you there?" not in bodies, bodies
    print(f"message archive (XEP-0313): {len(bodies)} messages with romeo, paged two at a time")


async def room_presence(client, nick, kind):
    """The next presence of the room occupant `nick` of type `kind`."""
    while True:
        p = await client.room_presence.get()
        if p["from"].resource == nick and p["type"] == kind:
            return p


async def muc(juliet, romeo):
    room = JID("capulets@conference.localhost")
    muc_j, muc_r = juliet.plugin["xep_0045"], romeo.plugin["xep_0045"]
    pres, _, _, _ = await wait(muc_j.join_muc_wait(room, "Juliet", maxstanzas=0, timeout=STEP_TIMEOUT), "juliet to create the room")
    codes = set(pres["muc"]["status_codes"])
    assert {110, 201} <= codes, pres
    form = await wait(muc_j.get_room_config(room), "the room's configuration form")
    form.set_values({"muc#roomconfig_roomname": "House of Capulet", "muc#roomconfig_persistentroom": True})
    await wait(muc_j.set_room_config(room, form), "juliet to configure the room")
    juliet.send_message(mto=room, mbody="Good morrow, cousin", mtype="groupchat")
    m = await wait(juliet.groupchat.get(), "juliet's message back from the room")
    assert m["body"] == "Good morrow, cousin" and m["from"].resource == "Juliet", m
    print("multi-user chat (XEP-0045): room created (201) and configured")

    muc_j.invite(room, "romeo@localhost", reason="Come in")
    inv = await wait(romeo.invites.get(), "romeo's invitation")
    assert str(inv["from"]) == str(room), inv
    _, _, occupants, history = await wait(
        muc_r.join_muc_wait(room, "Romeo", maxstanzas=5, timeout=STEP_TIMEOUT), "romeo to join")
    assert [h["body"] for h in history] == ["Good morrow, cousin"], history
    assert any(o["from"].resource == "Juliet" for o in occupants), occupants
    await wait(room_presence(juliet, "Romeo", "available"), "juliet to see romeo enter")
    print("invited; two occupants; history on join")

    romeo.send_message(mto=room, mbody="What light through yonder window breaks?", mtype="groupchat")
    for c in (juliet, romeo):
        while True:
            m = await wait(c.groupchat.get(), "romeo's groupchat message")
            if m["body"] == "What light through yonder window breaks?":
                break
        assert m["from"].resource == "Romeo", m
    muc_j.set_subject(room, "Verona")
    while True:
        m = await wait(romeo.subjects.get(), "the subject")
        if m["subject"] == "Verona":
            break
    romeo.send_message(mto=JID(f"{room}/Juliet"), mbody="A word, alone", mtype="chat")
    while True:
        m = await wait(juliet.messages.get(), "romeo's private message")
        if m["body"] == "A word, alone":
            break
    assert str(m["from"]) == f"{room}/Romeo", m
    print("groupchat, subject and a private message")

    await wait(muc_j.set_role(room, "Romeo", "none", reason="Banished"), "juliet to kick romeo")
    p = await wait(room_presence(romeo, "Romeo", "unavailable"), "romeo to be kicked")
    assert 307 in p["muc"]["status_codes"], p
    _, _, _, history = await wait(
        muc_r.join_muc_wait(room, "Romeo", maxstanzas=3, timeout=STEP_TIMEOUT), "romeo to come back")
    bodies = [h["body"] for h in history]
    assert bodies == ["Good morrow, cousin", "What light through yonder window breaks?"], bodies
    muc_r.leave_muc(room, "Romeo", msg="Parting is such sweet sorrow")
    await wait(room_presence(juliet, "Romeo", "unavailable"), "juliet to see romeo leave")
    muc_j.leave_muc(room, "Juliet")
    print("kick (307), history on rejoin, leave")


class EchoComponent(slixmpp.ComponentXMPP):
    """An external component (XEP-0114) that echoes every message to its domain."""

    def __init__(self):
        super().__init__("echo.localhost", "echo-secret-1", HOST, COMPONENT_PORT)
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", lambda _: self.ready.set())
        self.add_event_handler("message", self.on_message)
        self.seen = []

    def on_message(self, msg):
        self.seen.append(str(msg["from"]))
        reply = msg.reply("echo: " + msg["body"])
        reply.send()


async def component(romeo):
    echo = EchoComponent()
    echo.connect()
    await wait(echo.ready.wait(), "the component's handshake")
    romeo.register_plugin("xep_0030")
    items = await wait(romeo.plugin["xep_0030"].get_items(jid="localhost"), "the server's disco#items")
    jids = [str(i[0]) for i in items["disco_items"]["items"]]
    assert "echo.localhost" in jids, jids
    romeo.send_message(mto="anyone@echo.localhost/x", mbody="Are components there?", mtype="chat")
    while True:
        m = await wait(romeo.messages.get(), "the component's echo")
        if str(m["from"]) == "anyone@echo.localhost/x":
            break
    assert m["body"] == "echo: Are components there?", m
    assert echo.seen == ["romeo@localhost/orchard"], echo.seen
    echo.disconnect()
    await asyncio.sleep(0.3)
    print("a slixmpp component attached (XEP-0114), is listed in disco#items, and echoed romeo")


def publish_options(fields):
    form = slixmpp.plugins.xep_0004.stanza.Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


async def pep_and_pubsub():
    juliet = Client("juliet@localhost/pep", "juliet-pw", pep=True)
    romeo = Client("romeo@localhost/pep", "romeo-pw", pep=True)
    juliet.start()
    romeo.start()
    await wait(juliet.started.wait(), "juliet's PEP session")
    await wait(romeo.started.wait(), "romeo's PEP session")
    # The server asks each new caps ver for its features (XEP-0115); let that round trip end.
    await asyncio.sleep(1)

    # An avatar (XEP-0084): data, then metadata, whose notification reaches romeo because
    # his client announced urn:xmpp:avatar:metadata+notify.
    data = bytes(range(256)) * 8
    avatar_id = juliet.plugin["xep_0084"].generate_id(data)
    await wait(juliet.plugin["xep_0084"].publish_avatar(data), "juliet to publish her avatar's data")
    await wait(
        juliet.plugin["xep_0084"].publish_avatar_metadata([{"id": avatar_id, "type": "image/png", "bytes": len(data)}]),
        "juliet to publish her avatar's metadata",
    )
    while True:
        m = await wait(romeo.avatars.get(), "the avatar metadata notification (PEP, +notify)")
        if str(m["from"]) == "juliet@localhost":
            break
    info = m["pubsub_event"]["items"]["item"]["avatar_metadata"]["info"]
    assert info["id"] == avatar_id, m
    iq = await wait(romeo.plugin["xep_0084"].retrieve_avatar(JID("juliet@localhost"), avatar_id), "romeo to fetch the avatar")
    assert iq["pubsub"]["items"]["item"]["avatar_data"]["value"] == data, iq
    print("an avatar published through PEP; its notification reached a contact by +notify, who fetched the data (XEP-0084, XEP-0163)")

    # Bookmarks (XEP-0402): a private node, created by the publication's options.
    conference = slixmpp.xmlstream.ET.fromstring(
        "<conference xmlns='urn:xmpp:bookmarks:1' name='Council' autojoin='true'><nick>Juliet</nick></conference>"
    )
    options = publish_options({
        "pubsub#persist_items": "true",
        "pubsub#max_items": "max",
        "pubsub#send_last_published_item": "never",
        "pubsub#access_model": "whitelist",
    })
    await wait(
        juliet.plugin["xep_0060"].publish(None, "urn:xmpp:bookmarks:1", id="council@conference.localhost", payload=conference, options=options),
        "juliet to publish a bookmark",
    )
    iq = await wait(juliet.plugin["xep_0060"].get_items(None, "urn:xmpp:bookmarks:1"), "juliet to read her bookmarks")
    ids = [item["id"] for item in iq["pubsub"]["items"]]
    assert ids == ["council@conference.localhost"], iq
    try:
        await romeo.plugin["xep_0060"].get_items(JID("juliet@localhost"), "urn:xmpp:bookmarks:1", timeout=STEP_TIMEOUT)
        print("FAILED: romeo read juliet's bookmarks")
        sys.exit(1)
    except slixmpp.exceptions.IqError as e:
        assert e.condition == "not-allowed", e
    print("bookmarks kept in a private PEP node made by publish-options, refused to others (XEP-0402, XEP-0223)")

    # A node on the pubsub service (XEP-0060): created, subscribed to, published to.
    service = JID("pubsub.localhost")
    await wait(juliet.plugin["xep_0060"].create_node(service, "balcony-weather"), "juliet to create a node")
    await wait(romeo.plugin["xep_0060"].subscribe(service, "balcony-weather"), "romeo to subscribe")
    reading = slixmpp.xmlstream.ET.fromstring("<reading xmlns='urn:example:weather'>clear, 14 C</reading>")
    await wait(juliet.plugin["xep_0060"].publish(service, "balcony-weather", id="r1", payload=reading), "juliet to publish")
    while True:
        m = await wait(romeo.published.get(), "the pubsub notification")
        if m["pubsub_event"]["items"]["node"] == "balcony-weather":
            break
    assert str(m["from"]) == "pubsub.localhost", m
    assert m["pubsub_event"]["items"]["item"]["id"] == "r1", m
    print("a pubsub node created, subscribed to and published to; the subscriber was notified (XEP-0060)")
    juliet.disconnect()
    romeo.disconnect()
    await asyncio.sleep(0.3)


async def main():
    juliet = Client("juliet@localhost/balcony", "juliet-pw")
    romeo = Client("romeo@localhost/orchard", "romeo-pw")
    juliet.start()
    romeo.start()
    await wait(juliet.started.wait(), "juliet's session")
    await wait(romeo.started.wait(), "romeo's session")
    tls = [c.transport.get_extra_info("ssl_object") is not None for c in (juliet, romeo)]
    assert all(tls), f"not TLS: {tls}"
    print(f"logged in over TLS with {juliet.auth_mech} and {romeo.auth_mech}")
    assert (juliet.auth_mech or "").startswith("SCRAM"), juliet.auth_mech

    juliet.send_presence_subscription(pto="romeo@localhost")
    romeo.send_presence_subscription(pto="juliet@localhost")
    await wait(until_available(juliet, "romeo@localhost"), "juliet to see romeo's presence")
    await wait(until_available(romeo, "juliet@localhost"), "romeo to see juliet's presence")
    print("subscribed both ways; each sees the other's presence")

    juliet.send_message(mto="romeo@localhost", mbody="Wherefore art thou Romeo?", mtype="chat")
    m = await wait(romeo.messages.get(), "romeo to receive juliet's message")
    assert m["body"] == "Wherefore art thou Romeo?" and str(m["from"].bare) == "juliet@localhost", m
    romeo.send_message(mto="juliet@localhost", mbody="By a name I know not how to tell thee.", mtype="chat")
    m = await wait(juliet.messages.get(), "juliet to receive romeo's message")
    assert str(m["from"].bare) == "romeo@localhost", m
    print("messages exchanged")

    juliet.disconnect()
    await wait(juliet.disconnected, "juliet to disconnect")
    await asyncio.sleep(0.5)
    romeo.send_message(mto="juliet@localhost", mbody="Sent while you were away", mtype="chat")
    await asyncio.sleep(0.5)
    juliet2 = Client("juliet@localhost/balcony", "juliet-pw")
    juliet2.start()
    await wait(juliet2.started.wait(), "juliet's second session")
    m = await wait(juliet2.messages.get(), "the offline message")
    assert m["body"] == "Sent while you were away", m
    assert m["delay"]["stamp"] is not None, "no delay stamp"
    print("offline message delivered on reconnect, with a delay stamp")

    vcard = juliet2.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Juliet Capulet"
    vcard["NICKNAME"] = "jc"
    await wait(juliet2.plugin["xep_0054"].publish_vcard(vcard), "juliet to publish her vCard")
    iq = await wait(
        romeo.plugin["xep_0054"].get_vcard(JID("juliet@localhost"), cached=False),
        "romeo to read juliet's vCard",
    )
    assert iq["vcard_temp"]["FN"] == "Juliet Capulet", iq
    assert "jc" in iq["vcard_temp"]["NICKNAME"], iq  # a list: vCard allows several
    print("vCard published by one client and read by the other (XEP-0054)")

    bookmarks = Bookmarks()
    bookmarks.add_conference("council@conference.localhost", "Juliet", name="Council", autojoin=True)
    await wait(
        juliet2.plugin["xep_0048"].set_bookmarks(bookmarks, method="xep_0049"),
        "juliet to store her bookmarks",
    )
    iq = await wait(juliet2.plugin["xep_0048"].get_bookmarks(method="xep_0049"), "juliet to read them")
    conferences = iq["private"]["bookmarks"]["conferences"]
    assert len(conferences) == 1, iq
    assert str(conferences[0]["jid"]) == "council@conference.localhost", iq
    print("bookmarks stored in private storage and read back (XEP-0049)")

    await stream_management(romeo)
    await carbons(juliet2, romeo)
    await blocking(juliet2, romeo)
    await archive(juliet2)
    await muc(juliet2, romeo)
    await pep_and_pubsub()

    if COMPONENT_PORT:
        await component(romeo)

    if ECHO_BOT:
        romeo.send_message(mto="bot@localhost", mbody="Is the Lithos bot there?", mtype="chat")
        while True:
            m = await wait(romeo.messages.get(), "the echo bot's answer")
            if str(m["from"].bare) == "bot@localhost":
                break
        assert m["body"] == "Is the Lithos bot there?", m
        print("the lithos-client echo bot answered slixmpp")

    romeo.disconnect()
    juliet2.disconnect()
    await asyncio.sleep(0.3)
    print("OK")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
