"""Developer tools, not shipped with illhub: docs generation (``python -m tools.docs``) and the
classification evaluation (``python -m tools.evaluate``)."""
