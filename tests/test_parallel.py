"""topoembed._parallel: worker processes that stop when the run stops."""
import os
import signal
import threading
import time

import pytest

from topoembed._parallel import Pool


def test_an_interrupted_pool_ends_its_workers_at_once():
    """Ctrl-C (or an error) while workers run long tasks: the pool ends them instead of waiting
    for their tasks to finish (it waited; a 5,000-point run took 6-9 s to stop)."""
    threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # Ctrl-C in 2 s
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with Pool(2) as pool:
            for _ in pool.imap(time.sleep, [30, 30]):
                pass
    assert time.perf_counter() - t0 < 15  # the tasks would sleep 30 s
