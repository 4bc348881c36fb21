"""
The test side of test/faultp11.c (libparaf-faultp11.so, built by test/meson.build): a
PKCS#11 module wrapping SoftHSM that removes, inserts and swaps the token and injects errors,
hangs and a PIN retry counter on command. Its control language is described at the top of
test/faultp11.c and in doc/design.md ("Hotplug and token faults").

    fault = FaultModule(directory, build_dir)
    agent = agent_factory(modules=[fault.path], env=fault.env())
    fault.write("token paraf-test", "fail C_Sign CKR_DEVICE_REMOVED login")
    fault.calls() -> [(pid, "C_Sign", "CKR_DEVICE_REMOVED"), ...]
"""

import os
import time
from pathlib import Path

import pki

MODULE_NAME = "libparaf-faultp11.so"


class FaultModule:
    """One control file, state file and call log for the fault module (see the module
    docstring). .path is the module to give parafd (--module), .env() the environment."""

    def __init__(self, directory, build_dir, real=pki.SOFTHSM_MODULE):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = Path(build_dir) / "test" / MODULE_NAME
        if not self.path.exists():
            raise AssertionError(f"{self.path} is missing: build first (ninja -C build)")
        self.real = real
        self.control = self.dir / "fault.ctl"
        self.log = self.dir / "fault.log"
        self.lines = []
        self.write()

    def env(self):
        return {"PARAF_FAULT_REAL": str(self.real), "PARAF_FAULT_CONTROL": str(self.control),
            "PARAF_FAULT_LOG": str(self.log)}

    def write(self, *lines):
        """Replaces the control file atomically (a reader sees the old or the new one); the
        module's shared state (rule counts, a remove_at removal) starts again with it."""
        self.lines = list(lines)
        tmp = self.control.with_name(self.control.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in lines))
        os.replace(tmp, self.control)

    def calls(self, since=0):
        """The calls logged so far, from the `since`-th on: (pid, function, CKR_ name)."""
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((int(parts[0]), parts[1], parts[2]))
        return out[since:]

    def n_calls(self):
        return len(self.calls())

    def state(self):
        """The shared state file, parsed ({key: value}); {} when there is none yet."""
        try:
            text = (self.control.with_name(self.control.name + ".state")).read_text()
        except FileNotFoundError:
            return {}
        return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def wait_for(predicate, timeout, step=0.02):
    """Polls predicate() until it returns something true (returned) or timeout seconds pass
    (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(step)
