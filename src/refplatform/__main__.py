"""`python -m refplatform`: start one reference platform and print its address."""

from refplatform.cli import main

raise SystemExit(main())
