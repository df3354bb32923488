"""The benchmarks: ``python -m local.bench`` (cold start, throughput, ``--profile``), ``local.bench.cli``
(the operator CLI at scale), the ``latency`` proxy (chaos uses it too). They may import ``local.host``."""
