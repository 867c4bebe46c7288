"""core/client_address.py: who the client is behind the proxies the operator trusts."""

from __future__ import annotations

import pytest

from recorder_service.core.client_address import client_address, parse_address, parse_trusted_proxies

INGRESS = parse_trusted_proxies(["10.0.0.0/8", "2001:db8:ffff::/48"])


def test_an_untrusted_peer_is_the_client_and_its_headers_are_ignored() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], INGRESS) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    assert client_address("10.1.2.3", ["198.51.100.1"], INGRESS) == "198.51.100.1"
    # Two trusted hops (a load balancer, then the ingress) are skipped.
    assert client_address("10.1.2.3", ["198.51.100.1, 10.9.9.9"], INGRESS) == "198.51.100.1"


def test_a_spoofed_leftmost_hop_changes_nothing() -> None:
    honest = client_address("10.1.2.3", ["198.51.100.1"], INGRESS)
    spoofed = client_address("10.1.2.3", ["1.2.3.4, 5.6.7.8, 198.51.100.1"], INGRESS)
    assert honest == spoofed == "198.51.100.1"


def test_several_header_lines_read_as_one_list() -> None:
    assert client_address("10.1.2.3", ["1.2.3.4", "198.51.100.1, 10.0.0.5"], INGRESS) == "198.51.100.1"


def test_without_a_header_a_trusted_peer_is_the_client() -> None:
    assert client_address("10.1.2.3", [], INGRESS) == "10.1.2.3"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert client_address("10.1.2.3", ["10.7.7.7, 10.8.8.8"], INGRESS) == "10.7.7.7"


def test_ipv6_ports_and_mapped_addresses() -> None:
    assert client_address("2001:db8:ffff::1", ["[2001:db8::42]:443"], INGRESS) == "2001:db8::42"
    assert client_address("::ffff:10.1.2.3", ["198.51.100.1:5555"], INGRESS) == "198.51.100.1"
    assert parse_address("::ffff:192.0.2.1") == parse_address("192.0.2.1")


def test_a_hop_that_is_no_address_keys_the_client_only_when_a_trusted_proxy_wrote_it() -> None:
    assert client_address("10.1.2.3", ["junk, unknown"], INGRESS) == "unknown"
    assert client_address("10.1.2.3", ["junk, 198.51.100.1"], INGRESS) == "198.51.100.1"


@pytest.mark.parametrize("value", ["10.0.0.0/33", "not-an-address", "10.0.0.1/8/8", ""])
def test_bad_proxy_entries_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        parse_trusted_proxies([value])
