"""The benchmarks: ``python -m local.bench``, ``.cli``, ``.throttle``, ``.simulate_budget``, the ``latency``
proxy (chaos uses it too). They may import ``local.host`` and ``local.emulator``; only tests import them."""
