"""The stand-in for the Functions host: queue and timer triggers run as host.json says (``runner``), Azurite.
The rest of ``local/`` and the tests may import it; ``shared/``, ``cli/`` and ``function_app`` never do."""
