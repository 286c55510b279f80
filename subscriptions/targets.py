"""Where deliveries may go. Target URLs are checked when saved (literal addresses) and again when
sent (what the host name resolves to then), so that a webhook cannot be aimed at the internal
network unless `HOOKS_ALLOW_PRIVATE_TARGETS` says this deployment wants that."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

# Cloud metadata endpoints, named as such in refusals (169.254.169.254 is also link-local).
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}


class TargetRefused(Exception):
    """The target is not allowed; the message says why, for the log."""


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a target, or None. Only literal addresses are judged here."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Enter a valid absolute http(s) URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Enter an absolute http:// or https:// URL."
    if port == 0:
        return "Enter a valid port."
    if not settings.HOOKS_ALLOW_PRIVATE_TARGETS:
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            if parts.hostname.lower() in ("localhost", "localhost.localdomain") or parts.hostname.lower().endswith(
                ".localhost"
            ):
                return "Loopback targets are not allowed."
            return None
        if reason := address_problem(address):
            return f"{reason.capitalize()} targets are not allowed."
    return None


def credentials_problem(url: str) -> str | None:
    """A subscription's target must not carry credentials: they would travel in the signed
    envelope's `hook.target` and sit in every log row."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None:
        return (
            "Credentials in the URL are refused (they would appear in the envelope and the logs): "
            'use `auth` ({"type": "basic", "username", "password"} or {"type": "bearer", "token"}).'
        )
    return None


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in _METADATA:
        return "cloud-metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified-address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "private"
    return None


def check_at_send_time(url: str) -> None:
    """Raise TargetRefused if the target's host resolves to a forbidden address now. The refusal
    names the host only: what it resolves to is the deployment's internal network, which a tenant
    probing host names must not learn from the logs."""
    if settings.HOOKS_ALLOW_PRIVATE_TARGETS:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {host}") from exc
    for info in infos:
        if address_problem(ipaddress.ip_address(info[4][0].split("%")[0])):
            raise TargetRefused(refusal(host))


def refusal(host: str) -> str:
    """The one message for a host that leads to a forbidden address (at resolution or connect)."""
    return f"refused: {host} resolves to a private address, which targets may not use"
