"""The UI's pages, one module per area, each with a ``router`` that ``keel.ui.app`` mounts."""
