"""Pressure workers: long-lived load in processes of their own.

A worker reads its parameters as one JSON line on stdin and keeps stdin open as its
lifeline: a `stop` line, or stdin closing because the parent died, makes it release
everything and exit. It reports progress as JSON lines on stdout.
"""
