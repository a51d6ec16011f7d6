"""Helpers the tests share: servers on 127.0.0.1, subprocesses, frontier drivers, the test site."""
