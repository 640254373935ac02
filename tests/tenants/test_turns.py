"""Turns shared by the threads of a process and the processes of one host (tenants.turns)."""

import logging
import multiprocessing
import os
import threading
import time

import pytest

from tenants.turns import Turns


def _hold_and_report(directory, started, release):
    turns = Turns("test", directory=directory)
    with turns.hold("trunk-1"):
        started.set()
        release.wait(10)


def _holder(directory):
    """Another process holding trunk-1's turn until its `release` event is set."""
    context = multiprocessing.get_context("fork")
    started, release = context.Event(), context.Event()
    other = context.Process(target=_hold_and_report, args=(directory, started, release))
    other.start()
    assert started.wait(10)
    return other, release


def _taking(turns, key):
    """A thread that takes `key`'s turn; its event is set once it has it."""
    entered = threading.Event()

    def take():
        with turns.hold(key):
            entered.set()

    threading.Thread(target=take, daemon=True).start()
    return entered


def test_a_turn_held_by_another_process_is_waited_for(tmp_path):
    directory = tmp_path / "turns"
    other, release = _holder(directory)
    try:
        turns = Turns("test", directory=directory)
        entered = _taking(turns, "trunk-1")
        assert not entered.wait(0.3)  # the other process holds the stripe's file lock
        with turns.hold("another key in another stripe" if turns.stripe("x") == turns.stripe("trunk-1") else "x"):
            pass  # another stripe is free meanwhile
        release.set()
        assert entered.wait(10)
    finally:
        release.set()
        other.join(10)
    assert oct(os.stat(directory).st_mode & 0o777) == "0o700"


def test_a_dead_holder_releases_its_turn(tmp_path):
    directory = tmp_path / "turns"
    other, _ = _holder(directory)
    other.kill()
    other.join(10)
    assert _taking(Turns("test", directory=directory), "trunk-1").wait(10)


def test_threads_of_one_process_take_turns(tmp_path):
    turns = Turns("test", directory=tmp_path / "turns")
    inside, most = 0, 0
    lock = threading.Lock()

    def work():
        nonlocal inside, most
        for _ in range(50):
            with turns.hold("trunk-1"):
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1


def test_the_stripe_is_the_same_in_every_process():
    assert Turns("a").stripe("0b8f5c3e-4c1a-4f59-9d1e-2b8f1a3c5d7e") == 3  # CRC-32, not the seeded hash


@pytest.mark.parametrize("mode", [0o777, 0o750])
def test_a_directory_others_can_reach_is_not_used(tmp_path, caplog, mode):
    directory = tmp_path / "turns"
    directory.mkdir()
    directory.chmod(mode)
    turns = Turns("test", directory=directory)
    with caplog.at_level(logging.WARNING, logger="tenants.turns"), turns.hold("trunk-1"):
        pass
    with turns.hold("trunk-2"):
        pass
    assert list(directory.iterdir()) == []  # no file made there: turns within the process only
    assert [r.getMessage() for r in caplog.records if "within each process only" in r.getMessage()] != []
    assert len([r for r in caplog.records if r.name == "tenants.turns"]) == 1  # logged once


def test_a_symbolic_link_is_not_followed(tmp_path, caplog):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "turns").symlink_to(target)
    turns = Turns("test", directory=tmp_path / "turns")
    with caplog.at_level(logging.WARNING, logger="tenants.turns"), turns.hold("trunk-1"):
        pass
    assert list(target.iterdir()) == []


def test_a_forked_child_gets_its_own_locks(tmp_path):
    """A turn held across a fork is the parent's: the child waits for it (its own file lock) and gets
    it once the parent lets go, instead of inheriting a thread lock that nobody in it will release."""
    turns = Turns("test", directory=tmp_path / "turns")
    context = multiprocessing.get_context("fork")
    result = context.Queue()

    def child():
        with turns.hold("trunk-1"):
            result.put(time.monotonic())

    with turns.hold("trunk-1"):
        process = context.Process(target=child)
        process.start()
        time.sleep(0.3)
        released = time.monotonic()
    taken = result.get(timeout=10)
    process.join(10)
    assert taken >= released
