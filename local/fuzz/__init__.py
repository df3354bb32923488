"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers that read what the world sends: queue
messages (``shared.messages.parse_body``) and the service's answers (``shared.jobs.parse_answer``,
then the page merge and the archive renderer). ``make fuzz`` runs each target for ``FUZZ_SECONDS``.

``targets`` holds the checks (plain functions, also run by the test suite on their seeds);
``run`` is one target under atheris (a process of its own: libFuzzer exits when it is done);
``__main__`` runs them one after the other and reports executions and time. Imports nothing of
``local`` but itself; nothing imports it.
"""
