"""The Scrapy side: settings, downloader middlewares, the harvest spider, one module per
source kind, and pure parsers (bytes in, Resource records out)."""
