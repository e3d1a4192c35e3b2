"""`python -m loadtui` is the `loadtui` command."""

from loadtui.cli import main

raise SystemExit(main())
