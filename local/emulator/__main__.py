"""`python -m local.emulator`: see `local.emulator.cli`."""

from local.emulator.cli import main

raise SystemExit(main())
