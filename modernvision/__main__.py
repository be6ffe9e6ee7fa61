from modernvision.cli import main

raise SystemExit(main())
