"""Version and the identifying User-Agent (shared by every package, imports nothing)."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/illhub/illhub"
#: Sent with every request, robots.txt included, so site owners can see who we are.
USER_AGENT = f"illhub/{__version__} (+{PROJECT_URL}; interlibrary loan resource hub harvester)"
