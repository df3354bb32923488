"""Development-only pieces, never deployed (``.funcignore``): ``host/`` (the Functions host stand-in),
``emulator/`` (the Language service), ``proof/`` (chaos, judge, soak), ``bench/`` (the benchmarks),
``fuzz/`` (atheris targets for the message and answer parsers), the demo.

``demo.py`` and ``upstream.py`` (what an upstream system does: submit a job, enqueue its message) sit
at the top, used by the rooms below. Nothing under ``shared/``, ``cli/`` or ``function_app`` imports
``local``.
"""
