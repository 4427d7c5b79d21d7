"""The private-network guard: which addresses a harvest may connect to.

Pure functions (no sockets): they are unit-tested on every tricky form of address.
The same checks run twice at harvest time: on the URL's host before a request is
sent, and on the address a host name resolves to (see :mod:`harvesters.resolver`),
so a redirect or a DNS name pointing inside the network is refused as well.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Policy(StrEnum):
    PUBLIC = "public"  # the default: only globally routable addresses
    PRIVATE = "private"  # --allow-private-network: also loopback and private (never link-local)
    LOOPBACK = "loopback"  # tests and the demo: only this machine

    @classmethod
    def parse(cls, value: str | Policy | None) -> Policy:
        if isinstance(value, Policy):
            return value
        return cls(value or "public")


class BlockedAddress(Exception):
    """A request was refused by the network guard."""


_NUMERIC_HOST = re.compile(r"^[0-9a-fA-FxX.]+$")


def parse_ip(host: str) -> IPAddress | None:
    """The address a host string denotes literally, including the legacy forms
    ``2130706433``, ``0x7f000001`` and ``0177.0.0.1`` that C resolvers accept, or None
    for a real host name."""
    host = host.strip().strip("[]")
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        ip = None
    if ip is None and _NUMERIC_HOST.match(host) and any(c.isdigit() for c in host):
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))  # pure parsing, no lookup
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and routes to: IPv4-mapped (``::ffff:a.b.c.d``),
    6to4 (``2002::/16``), NAT64 (``64:ff9b::/96``) and the deprecated IPv4-compatible form
    (``::a.b.c.d``). Checking only the outer address would let ``2002:7f00:1::`` reach 127.0.0.1."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


#: Said of what no flag admits: a hint to use --allow-private-network would mislead.
EVERY_POLICY = "refused under every policy"

#: Cloud metadata services outside the link-local ranges (which are refused as a whole):
#: Alibaba Cloud (in carrier-grade NAT space), Oracle Cloud's older endpoint, and AWS's
#: IPv6 endpoint (a unique-local address). Each answers with credentials to whoever asks.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "100.100.100.200", "192.0.0.192", "fd00:ec2::254",
))
#: Host names of metadata services (they resolve to link-local or the addresses above, and
#: are refused before any lookup). ``metadata`` alone is how Google Cloud's is often written.
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
    "metadata.tencentyun.com", "metadata.platformequinix.com", "rancher-metadata",
})


def never_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is refused whatever the policy, or None. Link-local addresses are where
    cloud metadata services answer (169.254.169.254 and its neighbours, fe80::/10): a
    redirect into them from a public page would store the machine's credentials as a
    resource, ready to be published."""
    if ip.is_link_local:
        return f"{ip} is a link-local address, where cloud metadata services answer ({EVERY_POLICY})"
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata service address ({EVERY_POLICY})"
    return None


def address_problem(ip: IPAddress, policy: Policy) -> str | None:
    """Why ``ip`` may not be contacted under ``policy``, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Loopback-only mode trusts only what the kernel itself treats as IPv4 (::ffff:a.b.c.d);
        # a 6to4 or NAT64 address would leave the machine through a relay.
        inner = ip.ipv4_mapped if policy is Policy.LOOPBACK else embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner, policy)
            return f"{ip} embeds {problem}" if problem and ip.ipv4_mapped is None else problem
    if ip.is_unspecified:
        return f"{ip} is the unspecified address ({EVERY_POLICY})"
    if ip.is_multicast:
        return f"{ip} is a multicast address ({EVERY_POLICY})"
    if policy is Policy.LOOPBACK:
        return None if ip.is_loopback else f"{ip} is not a loopback address (loopback-only mode)"
    never = never_problem(ip)
    if never:
        return never
    if policy is Policy.PRIVATE:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_private:
        return f"{ip} is a private-network address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def host_problem(host: str, policy: Policy) -> str | None:
    """Check a URL's host before any lookup: literal addresses, and names that are
    loopback by definition."""
    ip = parse_ip(host)
    if ip is not None:
        problem = address_problem(ip, policy)
        return f"{host}: {problem}" if problem and str(ip) != host else problem
    name = host.lower().rstrip(".")
    is_localhost = name == "localhost" or name.endswith(".localhost")
    if name in METADATA_NAMES and policy is not Policy.LOOPBACK:
        return f"{host} is a cloud metadata service name ({EVERY_POLICY})"
    if policy is Policy.PUBLIC and is_localhost:
        return f"{host} is a loopback name"
    if policy is Policy.LOOPBACK and not is_localhost:
        # Refused before any DNS query: in loopback-only mode nothing may leave the machine.
        return f"{host} is not a loopback host (loopback-only mode)"
    return None


def hint(policy: Policy, problem: str = "") -> str:
    """What to do about a refusal under ``policy``: nothing to suggest when no flag would help."""
    if policy is Policy.PUBLIC and EVERY_POLICY not in problem:
        return " (use --allow-private-network to harvest hosts on your own network)"
    return ""
