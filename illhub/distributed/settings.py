"""The Scrapy settings of illhub as a Scrapy project (``scrapy.cfg``, and the entry point of the
egg deployed to Scrapyd): the settings of every illhub harvest (:mod:`harvesters.settings`:
the network guard, the robots.txt policy, politeness, bounds), the ``harvest`` spider of
:mod:`illhub.distributed.job`, and that module's output pipeline in place of the catalog's
store: a job writes what it harvested to its item feed and never opens a catalog.

The network policy is the machine's own (``ILLHUB_NETWORK``, ``ILLHUB_ALLOW_PRIVATE_NETWORK``
in the environment Scrapyd runs in); a job may narrow it (its ``policy`` argument), never
widen it. Scrapyd sets the log file and the item feed of each job.
"""

from __future__ import annotations

import sys
import zipimport


def _from_files() -> None:
    """Run from an egg (a zip), the code could not open the files beside it (the taxonomy):
    extract the egg and import everything from the extracted copy."""
    loader = globals().get("__loader__")
    if not isinstance(loader, zipimport.zipimporter):
        return
    from illhub.distributed.egg import PACKAGES, extract

    target = extract(loader.archive)
    sys.path.insert(0, str(target))
    ancestors = {__name__.rsplit(".", i)[0] for i in range(1, __name__.count(".") + 1)}
    for name in list(sys.modules):
        if name.split(".", 1)[0] not in PACKAGES or name == __name__:
            continue
        if name in ancestors:  # being imported: their submodules now come from the extracted copy
            sys.modules[name].__path__ = [str(target.joinpath(*name.split(".")))]
        else:
            del sys.modules[name]


_from_files()

from harvesters.settings import harvest_settings  # noqa: E402 - after the egg is extracted
from illhub.harvest import policy_from_env  # noqa: E402

BOT_NAME = "illhub"
SPIDER_MODULES = ["illhub.distributed.job"]

globals().update(harvest_settings(policy=policy_from_env().value, log_level="INFO", extra={
    "ITEM_PIPELINES": {"illhub.distributed.job.JobOutputPipeline": 300},
}))
