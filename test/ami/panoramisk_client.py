"""Black-box AMI client run by test/ami_clients_test.go with /usr/bin/python3.

Usage: panoramisk_client.py PORT USER SECRET CALLS
Logs in with panoramisk, pings, runs CoreShowChannels once CALLS generated
calls have appeared (the injection call, from 666, aside), runs a Command and a
bogus action, tries a wrong secret, collects call events until every call
hung up on both sides, and prints one JSON object with what it saw.
"""
import asyncio
import json
import sys

from panoramisk import Manager


def plain(msg):
    return {k: (v if isinstance(v, (str, list)) else str(v)) for k, v in dict(msg).items()}


async def main(port, user, secret, calls):
    loop = asyncio.get_running_loop()
    out = {"events": []}
    seen = asyncio.Event()
    done = asyncio.Event()
    state = {"hangups": 0, "newchan": set()}

    def on_event(manager, ev):
        name = ev.get("Event")
        if name in ("Newchannel", "Newstate", "Hangup"):
            out["events"].append({"event": name, "channel": ev.get("Channel"), "linkedid": ev.get("Linkedid"),
                                  "calleridname": ev.get("CallerIDName")})
        if name == "Hangup":
            state["hangups"] += 1
            if state["hangups"] >= 2 * (calls + 1):
                done.set()
        if name == "Newchannel" and ev.get("CallerIDNum") != "666" and not ev.get("Channel", "").endswith(";2"):
            state["newchan"].add(ev.get("Linkedid"))
            if len(state["newchan"]) >= calls:
                seen.set()

    m = Manager(loop=loop, host="127.0.0.1", port=port, username=user, secret=secret,
                ping_delay=1, ping_interval=1, reconnect_timeout=60)
    m.register_event("*", on_event)
    await m.connect()
    for _ in range(100):
        if m.authenticated:
            break
        await asyncio.sleep(0.05)
    out["authenticated"] = m.authenticated
    out["version"] = getattr(m.protocol, "version", None)
    pong = await m.send_action({"Action": "Ping"})
    out["ping"] = pong.get("Ping")
    r = await m.send_command("sniffer_version")
    out["command_output"] = r.get("Output")
    r = await m.send_action({"Action": "Bogus"})
    out["bogus_response"] = r.get("Response")
    await asyncio.wait_for(seen.wait(), 60)
    await asyncio.sleep(0.5)
    lst = await m.send_action({"Action": "CoreShowChannels"})
    items = [x for x in lst if x.get("Event") == "CoreShowChannel"]
    out["coreshow_items"] = len(items)
    out["coreshow_listitems"] = int(lst[-1].get("ListItems"))

    bad = Manager(loop=loop, host="127.0.0.1", port=port, username=user, secret=secret + "x",
                  ping_delay=100, reconnect_timeout=600)
    await bad.connect()
    for _ in range(100):
        if bad.authenticated_future is not None:
            break
        await asyncio.sleep(0.02)
    try:
        resp = await asyncio.wait_for(bad.authenticated_future, 5)
        out["wrong_secret"] = {"response": resp.get("Response"), "message": resp.get("Message")}
    except Exception as e:  # a failed future also counts as refused
        out["wrong_secret"] = {"error": repr(e)}
    out["wrong_secret_authenticated"] = bad.authenticated
    bad.close()

    await asyncio.wait_for(done.wait(), 90)
    m.close()
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])))
