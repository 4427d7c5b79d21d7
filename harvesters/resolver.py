"""A DNS resolver for Scrapy that applies the network guard to resolved addresses."""

from __future__ import annotations

from typing import Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet.error import DNSLookupError

from harvesters.guard import BlockedAddress, Policy, address_problem, hint, parse_ip


class ResolvedAddressBlocked(BlockedAddress, DNSLookupError):
    """A host name resolved to an address the policy forbids. The guard middleware checks
    names before connecting; should a connection-time lookup be refused all the same, Twisted
    sees a DNSLookupError and does not log it as a resolver crash."""

    def __str__(self) -> str:  # the guard's own sentence, not Twisted's "DNS lookup failed: ..."
        return str(self.args[0]) if self.args else "network guard: address refused"


class GuardedResolver(CachingThreadedResolver):
    policy: Policy = Policy.PUBLIC

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.policy = Policy.parse(crawler.settings.get("ILLHUB_NETWORK_POLICY"))
        return resolver

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:  # noqa: N802 (Twisted API)
        d = super().getHostByName(name, timeout)

        def check(address: str) -> str:
            ip = parse_ip(address)
            problem = address_problem(ip, self.policy) if ip else f"{address} is not an address"
            if problem:
                raise ResolvedAddressBlocked(f"network guard: {name} resolves to {problem}{hint(self.policy, problem)}")
            return address

        d.addCallback(check)
        return d
