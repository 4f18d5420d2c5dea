"""This host's real network addresses, read from its interfaces."""

from __future__ import annotations

import ipaddress
import socket

import psutil

from services.it.contract import HostAddresses


def host_addresses() -> HostAddresses:
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(addr.address.split("%", 1)[0])
            except ValueError:
                continue
            if ip not in found:
                found.append(ip)
    # IPv4 before IPv6; within each, routable before link-local before loopback.
    found.sort(key=lambda ip: (ip.version, ip.is_loopback, ip.is_link_local, str(ip)))
    primary = next((ip for ip in found if not ip.is_loopback and not ip.is_link_local), None)
    if primary is None and found:
        primary = found[0]
    return HostAddresses(
        hostname=socket.gethostname(),
        addresses=[str(ip) for ip in found],
        primary=str(primary) if primary else "unknown",
    )
