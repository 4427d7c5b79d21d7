"""Harvesting past one machine on Scrapyd, Scrapy's own job service.

illhub is a deployable Scrapy project (``scrapy.cfg`` → :mod:`illhub.distributed.settings`,
spider ``harvest`` in :mod:`illhub.distributed.job`). A Scrapyd job is given its work as spider
arguments (a registry, the sources to harvest, the fetch state of those sources) and writes
what the harvest produced, as JSON lines, to the item feed Scrapyd keeps for the job
(:mod:`illhub.distributed.records`); it never touches the catalog. The dispatcher
(:mod:`illhub.distributed.dispatch`, ``illhub harvest --scrapyd URL``) splits the sources by
host, schedules a job per share on the Scrapyd servers (:mod:`illhub.distributed.scrapyd`),
follows them, collects each job's feed over HTTP and stores it through the same pipeline and
store as a local harvest, with the same ``harvest_runs`` rows. The project's egg is built by
:mod:`illhub.distributed.egg` (or by ``scrapyd-deploy``). See docs/scaling.md.
"""
