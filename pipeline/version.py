"""Version and the identifying User-Agent (shared by every package, imports nothing)."""

__version__ = "0.1.0"
#: Sent with every request, robots.txt included, so site owners can see who we are. The project
#: has no public address of its own to name here: the registry's ``defaults.contact`` (the hub's
#: operator, whom a site owner can actually reach) is added when it is set.
USER_AGENT = f"illhub/{__version__} (interlibrary loan resource hub harvester)"
