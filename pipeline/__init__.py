"""Pure data code: the Resource record, normalization, URLs, classification and storage.

Nothing here imports Scrapy, click or Datasette: functions take bytes, records or a
``sqlite_utils.Database``.
"""
