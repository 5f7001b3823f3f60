"""Resilience primitives, each one job: the retry budget, backoff, Retry-After, outcome
classification, deadlines, circuit breakers and latency observation. All pure or guarded by
small locks never held across network I/O; the request flow in `_core` composes them."""
