"""topoembed._parallel: worker processes that stop when the run stops."""
import os
import signal
import threading
import time


from topoembed._parallel import Pool


def test_an_interrupted_pool_ends_its_workers_at_once():
    """Ctrl-C (or an error) while workers run long tasks: the pool ends them instead of waiting
    for their tasks to finish (it waited; a 5,000-point run took 6-9 s to stop).

    Ctrl-C is SIGINT to this process from 2 s on, repeated every 0.5 s until the pool has been
    left: in a full test run a single signal was sometimes lost before the pool saw it (the
    test failed with "DID NOT RAISE" in two fresh clones, never alone), which is not what is
    tested here; whether the pool then stops its workers at once is."""
    stop = threading.Event()

    def interrupt(signum, frame):
        if not stop.is_set():
            raise KeyboardInterrupt

    def press_ctrl_c():
        time.sleep(2.0)
        while not stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)

    previous = signal.signal(signal.SIGINT, interrupt)
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    t0 = time.perf_counter()
    interrupted = False
    try:
        with Pool(2) as pool:
            for _ in pool.imap(time.sleep, [30, 30]):
                pass
    except KeyboardInterrupt:
        stop.set()
        interrupted = True
    finally:
        stop.set()
        signal.signal(signal.SIGINT, previous)
    assert interrupted
    assert time.perf_counter() - t0 < 15  # the tasks would sleep 30 s


def test_a_script_read_from_standard_input_runs_on_one_process_with_a_warning():
    # `python - <<EOF ...`: spawned workers would look for a file named <stdin> and die at start,
    # which the pool used to report as the out-of-memory killer
    import subprocess
    import sys

    script = ("import logging; logging.basicConfig()\n"
              "from topoembed._parallel import Pool\n"
              "with Pool(2) as pool:\n"
              "    print(sorted(pool.imap(abs, [-1, -2, -3])), pool.jobs)\n")
    out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1, 2, 3] 1"
    assert "read from standard input" in out.stderr


def test_workers_name_settings_in_the_parents_words(monkeypatch):
    # a command-line ensemble's subsample warnings said "symmetrize='or'" (Python's words)
    from topoembed._validate import INTERFACE, option

    monkeypatch.setitem(INTERFACE, "name", "cli")
    with Pool(2) as pool:
        assert list(pool.imap(option, ["symmetrize"])) == ["--symmetrize"]
    monkeypatch.setitem(INTERFACE, "name", "python")
    with Pool(2) as pool:
        assert list(pool.imap(option, ["symmetrize"])) == ["symmetrize"]
