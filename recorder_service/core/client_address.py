"""Which address a request comes from, given the reverse proxies the operator trusts.

Each proxy appends the address it received the request from to `X-Forwarded-For`, so the
list reads left to right from the client towards us, and only the entries appended by proxies
we trust are true: anything left of them was written by whoever sent the request, including a
client that invents a leftmost hop to dodge the rate limit. Walking from the right and
skipping trusted hops, the first other entry is the client."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# An entry written by a trusted proxy that is no address (e.g. "unknown") still keys the rate
# limit, cut to this length.
_MAX_HOP_CHARS = 64


def parse_trusted_proxies(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses ("10.0.0.7", "2001:db8::1") or CIDR ranges ("10.0.0.0/8"); ValueError otherwise.
    Host bits in a range are ignored ("10.1.2.3/8" means 10.0.0.0/8)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def parse_address(text: str) -> IPAddress | None:
    """An IPv4 or IPv6 address, also written with a port ("192.0.2.1:8080", "[2001:db8::1]:443");
    an IPv4-mapped IPv6 address ("::ffff:192.0.2.1") is its IPv4 address. None if not an address."""
    text = text.strip()
    if text.startswith("["):
        host = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        host = text.partition(":")[0]
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client of a request whose TCP peer is `peer` and whose `X-Forwarded-For` header values
    (every occurrence, in order) are `forwarded_for`. A peer we do not trust is the client and
    its headers are ignored; otherwise the rightmost hop outside `trusted` is. When every hop is
    trusted (a request from inside the proxies' own network), the leftmost one is."""
    peer_address = parse_address(peer) if peer else None
    if peer_address is None:
        return (peer or "unknown")[:_MAX_HOP_CHARS]
    if not is_trusted(peer_address, trusted):
        return str(peer_address)
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = str(peer_address)
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            # Appended by a trusted proxy (we only read what trusted hops wrote), so not a forgery.
            return hop[:_MAX_HOP_CHARS]
        client = str(address)
        if not is_trusted(address, trusted):
            return client
    return client
