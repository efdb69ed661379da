from minectl_py.cli import main

raise SystemExit(main())
