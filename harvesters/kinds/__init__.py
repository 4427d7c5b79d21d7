"""The kinds of source, one module each: ``harvesters/kinds/<kind>.py`` holds the kind's
registry model (its fields, each with a docstring) and its handler, joined by
:func:`harvesters.source.kind`. Importing this package imports every kind, which fills
:data:`KINDS` (kind name → :class:`harvesters.source.Kind`): the one list of kinds.

Adding a kind: one module here, one parser in ``harvesters/parsers/``, one fixture folder
``tests/fixtures/<kind>/``, one test file ``tests/test_<kind>.py``, and its name on the import
line below (docs/development.md, "Adding a kind").

Kind modules import their parser inside the handler's methods: validating a registry imports
every kind, and a harvest of feeds does not pay for the HTML extractors' imports.
"""

from harvesters.kinds import conference, crawl, feed, ical, manual, sitemap, wordpress, youtube, zendesk  # noqa: F401
from harvesters.source import KINDS, Kind

__all__ = ["KINDS", "Kind"]
