"""HeldSignals: a signal while held is noted and handed to its own handler on release; a
signal that arrives while the handlers are being swapped leaves none of them swapped. And
the threads nnlab starts (the DCN's checkpoint writer, a run's heartbeat) survive a Ctrl-C
at the moment they start."""

import signal
import threading

import pytest
import torch

from nnlab.common.signals import HeldSignals
from nnlab.models.dcn.callbacks import CHECKPOINT, Checkpoints
from nnlab.runfolder.liveness import HEARTBEAT, Heartbeat


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


@pytest.fixture
def ctrl_c_at_thread_start(python_ctrl_c, monkeypatch):
    """Every thread started in the test gets Ctrl-C the moment its start() begins."""

    class CtrlCAtStart(threading.Thread):
        def start(self):
            signal.raise_signal(signal.SIGINT)  # Python acts on it before the next line
            super().start()

    monkeypatch.setattr(threading, "Thread", CtrlCAtStart)


def ctrl_c_at_the_next_sigterm_swap(monkeypatch) -> None:
    """Ctrl-C lands just as SIGTERM's handler is next swapped (once; later swaps go
    through)."""
    swap, fired = signal.signal, []

    def interrupted(sig, handler):
        if sig == signal.SIGTERM and not fired:
            fired.append(sig)
            raise KeyboardInterrupt
        return swap(sig, handler)

    monkeypatch.setattr(signal, "signal", interrupted)


def test_a_held_ctrl_c_interrupts_once_the_work_is_done(python_ctrl_c):
    done = []
    with pytest.raises(KeyboardInterrupt), HeldSignals():
        signal.raise_signal(signal.SIGINT)
        done.append("after the signal")
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_that_cuts_release_short_leaves_no_handler_swallowing_signals(
    python_ctrl_c, monkeypatch
):
    """Ctrl-C after SIGINT's handler is back but before SIGTERM's: the next SIGTERM still
    reaches its own handler (the one left behind passes it on, and puts that handler back)."""
    heard = []
    signal.signal(signal.SIGTERM, lambda signum, frame: heard.append(signum))
    sigterm_handler = signal.getsignal(signal.SIGTERM)
    held = HeldSignals()
    held.hold()
    ctrl_c_at_the_next_sigterm_swap(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        held.release()
    monkeypatch.undo()
    signal.raise_signal(signal.SIGTERM)
    assert heard == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is sigterm_handler


def test_an_ignored_signal_noted_while_held_is_dropped_and_stays_ignored(python_ctrl_c):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with HeldSignals():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_a_signal_while_holding_begins_leaves_no_handler_swapped(python_ctrl_c, monkeypatch):
    """Ctrl-C between swapping SIGINT's handler and SIGTERM's: hold() puts SIGINT's back and
    lets the interrupt through, instead of leaving Ctrl-C noted by nobody for good."""
    ctrl_c_at_the_next_sigterm_swap(monkeypatch)
    held = HeldSignals()
    with pytest.raises(KeyboardInterrupt):
        held.hold()
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_as_a_checkpoint_thread_starts_still_writes_it(tmp_path, ctrl_c_at_thread_start):
    """CI once had Ctrl-C arrive there: the run failed with "cannot join thread before it is
    started", then aborted. Now the thread starts all the same, the interrupt comes after,
    and the end of training waits for the checkpoint, which is whole."""
    state = {"step": 12, "weights": torch.arange(5.0)}
    checkpoints = Checkpoints(tmp_path, lambda: state, fresh=False)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.on_epoch_end(2)
    checkpoints.on_train_end()  # waits for the write; no error
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["step"] == 12 and torch.equal(saved["weights"], state["weights"])


def test_ctrl_c_as_the_heartbeat_starts_leaves_no_thread_beating(tmp_path, ctrl_c_at_thread_start):
    heartbeat = Heartbeat(tmp_path)
    with pytest.raises(KeyboardInterrupt), heartbeat:
        pytest.fail("the block ran although Ctrl-C came before it")
    assert "nnlab-heartbeat" not in [t.name for t in threading.enumerate()]
    assert not (tmp_path / HEARTBEAT).exists()


def test_ctrl_c_before_the_heartbeat_holds_its_signals_leaves_nothing(
    tmp_path, python_ctrl_c, monkeypatch
):
    """The signal comes while the heartbeat's HeldSignals is still swapping handlers, so
    its thread never starts: the interrupt comes through (not "cannot join thread before it
    is started"), and no heartbeat file stays behind."""
    heartbeat = Heartbeat(tmp_path)
    ctrl_c_at_the_next_sigterm_swap(monkeypatch)
    with pytest.raises(KeyboardInterrupt), heartbeat:
        pytest.fail("the block ran although Ctrl-C came before it")
    monkeypatch.undo()
    assert "nnlab-heartbeat" not in [t.name for t in threading.enumerate()]
    assert not (tmp_path / HEARTBEAT).exists()
