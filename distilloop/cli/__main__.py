from distilloop.cli import main

raise SystemExit(main())
