"""Turns taken by the threads of a process (tenants.turns)."""

import multiprocessing
import threading
import time

from tenants.turns import Turns


def test_threads_of_one_process_take_turns():
    turns = Turns()
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


def test_keys_on_other_stripes_do_not_wait():
    turns = Turns()
    first, second = (
        "trunk-1",
        next(f"trunk-{n}" for n in range(2, 100) if turns.stripe(f"trunk-{n}") != turns.stripe("trunk-1")),
    )
    entered = threading.Event()

    def take():
        with turns.hold(second):
            entered.set()

    with turns.hold(first):
        threading.Thread(target=take, daemon=True).start()
        assert entered.wait(10)


def test_the_stripe_is_the_same_in_every_process():
    assert Turns().stripe("0b8f5c3e-4c1a-4f59-9d1e-2b8f1a3c5d7e") == 3  # CRC-32, not the seeded hash


def test_a_forked_child_gets_its_own_locks():
    """A turn held across a fork is the parent's thread's: the child takes its own at once instead of
    inheriting a held lock that nobody in it would ever release."""
    turns = Turns()
    context = multiprocessing.get_context("fork")
    taken = context.Event()

    def child():
        with turns.hold("trunk-1"):
            taken.set()

    with turns.hold("trunk-1"):
        process = context.Process(target=child)
        process.start()
        assert taken.wait(10)  # while the parent still holds trunk-1's turn
    process.join(10)
    assert process.exitcode == 0
