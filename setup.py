"""Only for ``scrapyd-deploy``, which builds illhub's egg for Scrapyd with
``python setup.py bdist_egg`` (everything else is in pyproject.toml). The egg also carries
data/taxonomy.yaml beside the packages, where pipeline/taxonomy.py reads it;
illhub/distributed/egg.py builds the same egg without setuptools (``illhub harvest --scrapyd``)."""

import sys

from setuptools import setup

setup(data_files=[("data", ["data/taxonomy.yaml"])] if "bdist_egg" in sys.argv else [])
