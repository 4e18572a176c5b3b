"""``python -m gantry.kubectl_plugin`` runs the plugin without the console script."""

from gantry.kubectl_plugin.cli import main

raise SystemExit(main())
