"""What Datasette serves beyond its stock pages: how values are named (``labels``) and shown
(``cells``), the catalog's own pages (``pages``), the public profile's robots rules and CSV
guard (``public``), fast search (``search``) and facets (``facets``, ``facetcache``).

``datasette_config/plugins/`` only wires these modules to Datasette's hooks.
"""
