"""Pure parsers: bytes in, Resource records out. They never fetch anything."""
