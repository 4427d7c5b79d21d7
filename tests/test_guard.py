"""The private-network guard: pure address checks, the downloader middleware and the
resolver check, all without opening a socket or asking DNS anything."""

from __future__ import annotations

import asyncio

import pytest
from scrapy import Request

from harvesters.guard import BlockedAddress, Policy, address_problem, host_problem, parse_ip
from harvesters.middlewares import GuardRefused, NetworkGuardMiddleware
from harvesters.resolver import GuardedResolver
from harvesters.settings import harvest_settings

PUBLIC, PRIVATE, LOOPBACK = Policy.PUBLIC, Policy.PRIVATE, Policy.LOOPBACK
OK = None

# host → expected outcome under (public, private, loopback): True = allowed, False = refused
TABLE = {
    "10.0.0.1": (False, True, False),
    "172.16.0.1": (False, True, False),
    "192.168.1.1": (False, True, False),
    # Link-local and cloud metadata: refused under every policy, --allow-private-network included.
    "169.254.169.254": (False, False, False),  # AWS, Azure, Google Cloud, OpenStack metadata
    "169.254.170.2": (False, False, False),  # AWS ECS task metadata
    "::ffff:169.254.169.254": (False, False, False),
    "2002:a9fe:a9fe::": (False, False, False),  # 6to4 wrapping 169.254.169.254
    "100.100.100.200": (False, False, False),  # Alibaba Cloud metadata (in carrier-grade NAT space)
    "192.0.0.192": (False, False, False),  # Oracle Cloud's older metadata endpoint
    "fd00:ec2::254": (False, False, False),  # AWS metadata over IPv6 (a unique-local address)
    "metadata.google.internal": (False, False, False),
    "METADATA.google.internal.": (False, False, False),
    "metadata": (False, False, False),
    "instance-data.ec2.internal": (False, False, False),
    "100.64.0.1": (False, True, False),  # carrier-grade NAT
    "0.0.0.0": (False, False, False),
    "0": (False, False, False),
    "::": (False, False, False),
    "224.0.0.1": (False, False, False),
    "::1": (False, True, True),
    "[::1]": (False, True, True),
    "fe80::1": (False, False, False),
    "[fe80::1%eth0]": (False, False, False),
    "fd00::1": (False, True, False),  # unique-local, not a metadata address
    "fc00::1": (False, True, False),
    "::ffff:127.0.0.1": (False, True, True),
    "::ffff:10.0.0.1": (False, True, False),
    "2002:7f00:1::": (False, True, False),  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a00:1": (False, True, False),  # NAT64 wrapping 10.0.0.1
    "::127.0.0.1": (False, True, False),  # IPv4-compatible wrapping 127.0.0.1
    "2130706433": (False, True, True),  # 127.0.0.1 as one decimal number
    "0x7f000001": (False, True, True),  # ... as hex
    "0177.0.0.1": (False, True, True),  # ... with an octal first part
    "127.1": (False, True, True),
    "127.0.0.1": (False, True, True),
    "localhost": (False, True, True),
    "ill.localhost": (False, True, True),
    "8.8.8.8": (True, True, False),
    "2001:4860:4860::8888": (True, True, False),
    "64:ff9b::808:808": (True, True, False),
    "demo.example.org": (True, True, False),  # a name: refused before DNS in loopback mode only
}


@pytest.mark.parametrize("host", list(TABLE))
@pytest.mark.parametrize("policy", [PUBLIC, PRIVATE, LOOPBACK])
def test_host_problem(host, policy):
    allowed = TABLE[host][[PUBLIC, PRIVATE, LOOPBACK].index(policy)]
    problem = host_problem(host, policy)
    assert (problem is None) == allowed, problem
    if problem:
        assert host.strip("[]").split("%")[0] in problem or host in problem
        # what no flag admits says so (and gets no --allow-private-network hint)
        if not any(TABLE[host]) and policy is not LOOPBACK:
            assert "refused under every policy" in problem, problem
        if any(TABLE[host]):
            assert "refused under every policy" not in problem, problem


@pytest.mark.parametrize("text,expected", [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
    ("::ffff:127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("[fe80::1%eth0]", "fe80::1"),
    ("example.org", None), ("", None), ("1e100", None), ("0x", None),
])
def test_parse_ip_reads_legacy_forms_without_lookups(text, expected):
    ip = parse_ip(text)
    assert (str(ip) if ip else None) == expected


def test_messages_say_why():
    assert host_problem("169.254.169.254", PUBLIC) == ("169.254.169.254 is a link-local address, where cloud "
                                                       "metadata services answer (refused under every policy)")
    assert host_problem("169.254.169.254", PRIVATE) == host_problem("169.254.169.254", PUBLIC)
    assert host_problem("metadata.google.internal", PRIVATE) == ("metadata.google.internal is a cloud metadata "
                                                                 "service name (refused under every policy)")
    assert host_problem("0x7f000001", PUBLIC) == "0x7f000001: 127.0.0.1 is a loopback address"
    assert host_problem("10.0.0.1", PUBLIC) == "10.0.0.1 is a private-network address"
    assert host_problem("100.64.0.1", PUBLIC) == "100.64.0.1 is not a public address"
    assert host_problem("demo.example.org", LOOPBACK) == "demo.example.org is not a loopback host (loopback-only mode)"
    assert address_problem(parse_ip("8.8.8.8"), PUBLIC) is None


def guard(policy: Policy, url: str) -> None:
    """Run the guard middleware on a request. Host names are only used where they are refused
    before any lookup (loopback-only mode): an allowed name would be resolved."""
    return asyncio.run(NetworkGuardMiddleware(policy).process_request(Request(url)))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:text/plain,hello", "ftp://ftp.example.org/x",
                                 "s3://bucket/key"])
def test_middleware_never_fetches_other_schemes(url):
    for policy in Policy:
        with pytest.raises(GuardRefused, match="URLs are never fetched"):
            guard(policy, url)


def test_middleware_refuses_credentials_and_private_hosts():
    with pytest.raises(GuardRefused, match="user name or password"):
        guard(PRIVATE, "https://user:pw@example.org/")
    with pytest.raises(GuardRefused, match=r"10\.0\.0\.1 is a private-network address \(use --allow-private-network"):
        guard(PUBLIC, "http://10.0.0.1/feed")
    with pytest.raises(GuardRefused, match="loopback-only mode"):
        guard(LOOPBACK, "https://demo.example.org/feed")
    assert guard(PUBLIC, "https://93.184.215.14/feed") is None
    assert guard(PRIVATE, "http://10.0.0.1/feed") is None
    assert guard(LOOPBACK, "http://127.0.0.1:8000/feed") is None


@pytest.mark.parametrize("address,policy,blocked", [
    ("10.0.0.1", PUBLIC, True), ("127.0.0.1", PUBLIC, True), ("169.254.169.254", PUBLIC, True),
    ("10.0.0.1", PRIVATE, False), ("93.184.215.14", PUBLIC, False), ("93.184.215.14", LOOPBACK, True),
    ("169.254.169.254", PRIVATE, True), ("fe80::1", PRIVATE, True), ("fd00:ec2::254", PRIVATE, True),
    ("100.100.100.200", PRIVATE, True),
])
def test_resolver_checks_the_resolved_address(address, policy, blocked):
    """A public-looking name that resolves inside the network is refused (DNS rebinding).
    The answer is planted in Scrapy's DNS cache, so no query is made."""
    from scrapy.resolver import dnscache

    name = f"rebind-{address.replace('.', '-')}.example.org"
    dnscache[name] = address
    # No reactor is needed for a cached answer (and none is installed in the test process,
    # which would clash with a later in-process crawl's reactor).
    resolver = GuardedResolver(object(), cache_size=10, timeout=1)
    resolver.policy = policy
    results: list = []
    resolver.getHostByName(name).addBoth(results.append)
    [result] = results
    if blocked:
        assert isinstance(result.value, BlockedAddress)
        assert f"network guard: {name} resolves to {address}" in str(result.value)
    else:
        assert result == address


def test_policy_from_env(monkeypatch):
    from illhub.harvest import policy_from_env

    monkeypatch.setenv("ILLHUB_NETWORK", "")
    monkeypatch.delenv("ILLHUB_ALLOW_PRIVATE_NETWORK", raising=False)
    assert policy_from_env() is PUBLIC
    assert policy_from_env(allow_private=True) is PRIVATE
    monkeypatch.setenv("ILLHUB_ALLOW_PRIVATE_NETWORK", "1")
    assert policy_from_env() is PRIVATE
    monkeypatch.setenv("ILLHUB_NETWORK", "loopback")
    assert policy_from_env(allow_private=True) is LOOPBACK  # the tests' setting wins


def test_settings_are_polite_and_bounded():
    s = harvest_settings(policy="public")
    # Names the tool and what it does; no address unless the registry gives its operator's contact
    # (the project has no public address to claim).
    assert s["USER_AGENT"].startswith("illhub/") and "interlibrary loan" in s["USER_AGENT"]
    assert "http" not in s["USER_AGENT"]
    assert s["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1 and s["DOWNLOAD_DELAY"] == 1.0
    assert s["DOWNLOAD_TIMEOUT"] == 20 and s["DOWNLOAD_MAXSIZE"] == 5 * 1024 * 1024
    assert s["RETRY_TIMES"] == 2 and 404 not in s["RETRY_HTTP_CODES"] and 503 in s["RETRY_HTTP_CODES"]
    assert s["DOWNLOAD_HANDLERS"]["file"] is None and s["DOWNLOAD_HANDLERS"]["data"] is None
    assert s["TELNETCONSOLE_ENABLED"] is False and s["COOKIES_ENABLED"] is False
    assert "harvesters.middlewares.PoliteRobotsMiddleware" in s["DOWNLOADER_MIDDLEWARES"]
    assert s.get("TWISTED_DNS_RESOLVER", s.get("DNS_RESOLVER")) == "harvesters.resolver.GuardedResolver"
    assert harvest_settings(delay=0)["DOWNLOAD_DELAY"] > 0  # never zero (see DESIGN.md)


# -- issue 21: link-local under --allow-private-network, and proxies -------------------------


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://100.100.100.200/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
])
def test_allow_private_network_never_admits_link_local_or_metadata(url):
    """--allow-private-network admits loopback and private hosts, never where cloud metadata
    services answer; and no message suggests a flag that would not help."""
    for policy in (PRIVATE, PUBLIC):
        with pytest.raises(GuardRefused, match=r"refused under every policy\)$"):
            guard(policy, url)
    assert guard(PRIVATE, "http://10.0.0.1/feed") is None  # the flag still does what it says


def planted_resolver(policy: Policy, answers: dict[str, str]):
    """The guarded resolver with DNS answers planted in Scrapy's cache (no query, no reactor);
    a name not planted does not resolve. Records the names asked for."""
    from scrapy.resolver import dnscache
    from twisted.internet.error import DNSLookupError

    resolver = GuardedResolver(object(), cache_size=10, timeout=1)
    resolver.policy = policy
    asked: list[str] = []
    for name, address in answers.items():
        dnscache[name] = address

    async def resolve(host: str) -> str:
        asked.append(host)
        if host not in answers:
            raise DNSLookupError(host)
        results: list = []
        resolver.getHostByName(host).addBoth(results.append)
        [result] = results
        if hasattr(result, "raiseException"):
            result.raiseException()
        return result

    resolve.asked = asked
    return resolve


def guard_via(policy: Policy, proxy: str, url: str, answers: dict[str, str]):
    resolve = planted_resolver(policy, answers)
    middleware = NetworkGuardMiddleware(policy, proxy=proxy, resolve=resolve)
    try:
        return asyncio.run(middleware.process_request(Request(url)))
    finally:
        guard_via.asked = resolve.asked


def test_a_named_proxy_is_checked_like_any_host_and_the_message_says_proxy():
    with pytest.raises(GuardRefused, match=r"^network guard: proxy 10\.1\.2\.3 is a private-network address "
                                           r"\(use --allow-private-network"):
        guard_via(PUBLIC, "http://10.1.2.3:3128", "https://ill.example.org/feed", {})
    assert guard_via.asked == []  # refused before any lookup, of the proxy or of the site
    with pytest.raises(GuardRefused, match=r"^network guard: proxy 169\.254\.169\.254 is a link-local address"):
        guard_via(PRIVATE, "http://169.254.169.254:80", "https://ill.example.org/feed", {})
    with pytest.raises(GuardRefused, match=r"^network guard: proxy proxy\.corp\.example resolves to 10\.0\.0\.9 "):
        guard_via(PUBLIC, "http://proxy.corp.example:3128", "https://ill.example.org/feed",
                  {"proxy.corp.example": "10.0.0.9"})
    with pytest.raises(GuardRefused, match=r"^network guard: proxy nowhere\.example does not resolve "
                                           r"\(check --proxy"):
        guard_via(PRIVATE, "http://nowhere.example:3128", "https://ill.example.org/feed", {})
    # allowed: a private proxy with --allow-private-network, a site that resolves to a public address
    assert guard_via(PRIVATE, "http://10.1.2.3:3128", "https://ill.example.org/feed",
                     {"ill.example.org": "93.184.215.14"}) is None


def test_through_a_proxy_a_name_that_does_not_resolve_here_is_never_fetched():
    """Without this, the proxy would resolve the name itself, to an address nobody checked
    (the DNS check bypassed); without a proxy, the download reports the DNS failure."""
    with pytest.raises(GuardRefused, match=r"^network guard: intranet\.example does not resolve here .* the proxy "
                                           r"is never asked"):
        guard_via(PRIVATE, "http://10.1.2.3:3128", "http://intranet.example/feed", {})
    assert guard_via.asked == ["intranet.example"]
    with pytest.raises(GuardRefused, match=r"intranet-rebind\.example resolves to 10\.0\.0\.5"):
        guard_via(PUBLIC, "http://proxy.example.net:3128", "http://intranet-rebind.example/feed",
                  {"proxy.example.net": "93.184.215.20", "intranet-rebind.example": "10.0.0.5"})
    # no proxy: a name that does not resolve is left to the download, as before
    resolve = planted_resolver(PUBLIC, {})
    assert asyncio.run(NetworkGuardMiddleware(PUBLIC, resolve=resolve).process_request(
        Request("http://typo.example/feed"))) is None


def test_proxy_variables_of_the_environment_are_ignored(monkeypatch):
    from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware

    from harvesters.linkcheck import linkcheck_settings_extra
    from harvesters.middlewares import NamedProxyMiddleware

    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    scrapy_default = Request("http://ill.example.org/feed")
    HttpProxyMiddleware().process_request(scrapy_default)
    assert scrapy_default.meta.get("proxy") == "http://10.9.9.9:3128"  # what Scrapy alone would do
    unnamed = Request("http://ill.example.org/feed")
    NamedProxyMiddleware(None).process_request(unnamed)
    assert "proxy" not in unnamed.meta
    named = Request("https://ill.example.org/feed")
    NamedProxyMiddleware("http://illhub:s3cret@127.0.0.1:3128").process_request(named)
    assert named.meta["proxy"] == "http://127.0.0.1:3128" and named.headers[b"Proxy-Authorization"].startswith(b"Basic ")
    # every crawl (harvest, link check, discovery) uses it instead of Scrapy's
    for middlewares in (harvest_settings()["DOWNLOADER_MIDDLEWARES"], linkcheck_settings_extra()["DOWNLOADER_MIDDLEWARES"]):
        assert middlewares["scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware"] is None
        assert "harvesters.middlewares.NamedProxyMiddleware" in middlewares
    assert harvest_settings(proxy="http://127.0.0.1:3128")["ILLHUB_PROXY"] == "http://127.0.0.1:3128"
