"""`client_key`: what per-client limits count by."""

from __future__ import annotations

from hypothesis import given, strategies as st

from hub.client_key import client_key, is_ipv6


def test_keys() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:0:7:aaaa:bbbb:cccc:dddd") == "2001:db8:0:7::/64"
    assert client_key("[2001:db8:0:7::1]") == "2001:db8:0:7::/64"
    assert client_key("fe80::1%eth0") == "fe80::/64"
    assert client_key("::1") == "::/64"
    assert client_key("not an address") == "not an address"
    assert client_key("") == ""


@given(st.ip_addresses(v=6))
def test_every_address_of_a_64_shares_its_key(addr: object) -> None:
    a = int(addr)  # type: ignore[call-overload]
    import ipaddress
    if ipaddress.IPv6Address(a).ipv4_mapped is not None:
        return
    other = ipaddress.IPv6Address((a >> 64 << 64) | (~a & (2**64 - 1)))
    assert client_key(str(addr)) == client_key(str(other))
    assert client_key(str(addr)).endswith("/64")


@given(st.text(max_size=60))
def test_any_text_gives_a_key(text: str) -> None:
    assert isinstance(client_key(text), str)


def test_is_ipv6() -> None:
    assert is_ipv6("::1") and is_ipv6("[2001:db8::7]") and is_ipv6("fe80::1%eth0")
    # A dual-stack socket's IPv4 peer, IPv4 and anything else: not IPv6.
    assert not any(is_ipv6(h) for h in ("::ffff:10.1.2.3", "10.1.2.3", "", "unix", "host.example"))
