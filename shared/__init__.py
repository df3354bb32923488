"""The Language job archiver: a host-free core that the Functions triggers call into.

Public entry points: ``shared.worker.handle_message`` (one queue message) and
``shared.sweep.run_sweep`` (the timer), both driven through ``shared.runtime``.
"""
