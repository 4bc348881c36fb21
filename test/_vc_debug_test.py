# temporary debugging (engineer D); removed before hand-off
import subprocess, threading, time
from test_opensc import cards, vcard, piv_agent, sign_and_verify, card_tokens  # noqa

def test_debug_swap(vcard, cards, piv_agent, ca, tmp_path):
    agent = piv_agent()
    a, b = cards["A"], cards["B"]
    sign_and_verify(agent, a.ids["9a"], ca, tmp_path)
    vcard.swap("B")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 6:
        res = {}
        def call():
            res["r"] = agent.call("tokens.list", timeout=60)
        th = threading.Thread(target=call); th.start()
        th.join(5)
        if th.is_alive():
            h = agent.helper_pid()
            print("HANG helper", h, "at", time.monotonic() - t0)
            out = subprocess.run(["gdb", "-p", str(h), "-batch", "-ex", "thread 1", "-ex", "frame 3", "-ex", "p *mutex", "-ex", "info threads"], capture_output=True, text=True)
            print(out.stdout[-8000:])
            print(vcard.apdus()[-8:])
            th.join()
            print(res)
            assert 0
        time.sleep(0.05)
