"""``make bench``: numbers behind the performance and cost claims, measured on this machine.

1. Cold start: wall time to import ``function_app`` in a fresh interpreter (median of several
   runs), and whether the heavy ``azure.identity`` stays off that path when a key is configured.
2. Throughput against the floor: jobs finished at their first poll, archived by
   - the app: the real ``function_app.poll_job`` driven by ``local.host.runner.QueueRunner`` (the host's
     queue loop: batches of ``batchSize`` from host.json, a new batch at ``newBatchThreshold``, one
     receive per batch and one delete per message), one message per job;
   - the floor: the least I/O that does the same work: one aiohttp session, 16 jobs at once, that
     GETs every page of a job (following ``nextLink``), PUTs its task blobs at once and then the
     manifest (``If-None-Match: *``), with no queue, no ledger, no checks and no SDK;
   - the queued floor: the floor's work as the function under the same runner, i.e. what the
     queue's own receive and delete leave of the floor: the most the app can reach.
   Rounds alternate (app, floor, queued floor, app, ...) on loopback, then through ``local.bench.latency``
   proxies that add a delay to each request (Language and storage apart). Each side's figure is
   the median of its rounds; a ratio is the median of the rounds' own ratios (a round's sides ran
   back to back, under the same load from the rest of the machine). Requests per job are counted
   on each side's aiohttp session; CPU per job is read for this process, Azurite and the emulator.

Azurite, the Language emulator and the proxies each run in a process of their own, so the
benchmark process holds only the side being measured. Everything runs on loopback; the numbers are
for comparison between changes, not for Azure. ``--profile`` runs two app rounds under cProfile
and prints the app's CPU by package and its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from local.bench.cold_start import cold_start, telemetry_cold_start
from local.bench.throughput import Options, throughput


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--documents", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs at once on the floor side")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side and scenario (median)")
    parser.add_argument("--language-latency-ms", type=float, default=40.0)
    parser.add_argument("--storage-latency-ms", type=float, default=40.0)
    parser.add_argument("--import-runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="profile two app rounds (cProfile) instead")
    args = parser.parse_args()
    if not args.profile:
        cold_start(args.import_runs)
        telemetry_cold_start(args.import_runs)
    options = Options(
        jobs=args.jobs,
        documents=args.documents,
        concurrency=args.concurrency,
        rounds=args.rounds,
        language_delay=args.language_latency_ms / 1000,
        storage_delay=args.storage_latency_ms / 1000,
        profile=args.profile,
    )
    asyncio.run(throughput(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
