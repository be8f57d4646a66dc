"""The daemon as a child process, for the tests: the kit's runner (monitor/testing/daemon.py), under its old name."""

from monitor.testing.daemon import BINARY, REFUND_SECRET, TOKEN, Daemon, sign_refund, signed_refund, wait_for

__all__ = ["BINARY", "REFUND_SECRET", "TOKEN", "Daemon", "sign_refund", "signed_refund", "wait_for"]
