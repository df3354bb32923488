"""The proofs that nothing is lost: the crash-chaos run (``chaos``), the storage-only ``judge``, the soak.
They may import ``local.host``, ``local.emulator`` and ``local.bench.latency``; only tests import them."""
