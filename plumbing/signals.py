"""Ctrl-C and SIGTERM: finish the step, save a checkpoint, exit; the same command resumes.

SIGINT and SIGTERM only set a flag (a list that becomes non-empty); train.py's loop looks at it
after every step (`stop_requested`) and saves a checkpoint before exiting with 128 + the signal's
number (`save_and_exit`), as a shell reports a process killed by that signal.
"""

import contextlib
import signal
import sys


@contextlib.contextmanager
def stop_flag():
    """While active, SIGINT / SIGTERM append their number to the yielded list instead of
    stopping the process; the previous handlers come back on exit."""
    stop_signal = []
    previous = {sig: signal.signal(sig, lambda signum, frame: stop_signal.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop_signal
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_requested(args, stop_signal, steps_done):
    """True once SIGINT/SIGTERM arrived (or the tests' --interrupt-after count is reached)."""
    if args.interrupt_after and steps_done >= args.interrupt_after and not stop_signal:
        stop_signal.append(signal.SIGINT)
    return bool(stop_signal)


def save_and_exit(checkpoints, step, signum):
    """After SIGINT / SIGTERM: save a checkpoint at `step` and return the exit status."""
    path = checkpoints.save(checkpoint_number=step)
    print(f"\ninterrupted by {signal.Signals(signum).name} at step {step}; checkpoint {path} "
          "written; re-run the same command to continue", flush=True)
    return 128 + signum


def quiet_interrupt():
    """From now on Ctrl-C ends the process with status 130 and no traceback, also while modules
    load (eval.py imports TensorFlow for seconds before its main runs): SIGINT raises
    SystemExit(130), which Python ends with that status without printing anything."""
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(128 + signal.SIGINT))
