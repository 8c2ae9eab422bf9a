"""HeldSignals: a signal while held is noted and handed to its own handler on release; a
signal that arrives while the handlers are being swapped leaves none of them swapped."""

import signal

import pytest

from nnlab.common.signals import HeldSignals


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler for the test (pytest's run may have another), put back
    after, with SIGTERM's."""
    old = {s: signal.getsignal(s) for s in HeldSignals.SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def test_a_held_ctrl_c_interrupts_once_the_work_is_done(python_ctrl_c):
    done = []
    with pytest.raises(KeyboardInterrupt), HeldSignals():
        signal.raise_signal(signal.SIGINT)
        done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored(python_ctrl_c):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with HeldSignals():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_a_signal_while_holding_begins_leaves_no_handler_swapped(python_ctrl_c, monkeypatch):
    """Ctrl-C between swapping SIGINT's handler and SIGTERM's: hold() puts SIGINT's back and
    lets the interrupt through, instead of leaving Ctrl-C noted by nobody for good."""
    swap = signal.signal

    def interrupted_at_sigterm(sig, handler):
        if sig == signal.SIGTERM and handler != signal.SIG_DFL:
            raise KeyboardInterrupt
        return swap(sig, handler)

    monkeypatch.setattr(signal, "signal", interrupted_at_sigterm)
    held = HeldSignals()
    with pytest.raises(KeyboardInterrupt):
        held.hold()
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
