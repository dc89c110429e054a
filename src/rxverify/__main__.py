"""`python -m rxverify`: the same as the `rxverify` command."""

from rxverify.cli import main

raise SystemExit(main())
