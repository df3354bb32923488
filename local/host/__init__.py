"""The stand-in for the Functions host: queue and timer triggers run as host.json says (``runner``), worker
processes (``worker``, ``process``), Azurite. The rest of ``local/`` and the tests may import it."""
