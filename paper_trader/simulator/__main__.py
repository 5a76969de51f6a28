"""``python -m paper_trader.simulator --help``."""

from paper_trader.simulator.command import main

raise SystemExit(main())
