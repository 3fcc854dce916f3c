from pifed.cli import main

raise SystemExit(main())
