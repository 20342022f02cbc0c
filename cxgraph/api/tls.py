"""The TLS certificate of the neuPrint front door (neuprint-python speaks HTTPS only).

Without ``--tls-cert/--tls-key`` (or ``[api] tls_cert``/``tls_key``), ``cxgraph serve``
uses ``WS/tls/cert.pem`` and ``WS/tls/key.pem``, generating them on first use: a
self-signed certificate (EC P-256, 825 days) for ``localhost``, ``127.0.0.1``, ``::1``
and the host it listens on. The key file is mode 0600. Clients pass ``verify=False``
or, better, the certificate itself (``requests`` takes a path as ``verify``; see
docs/neuprint.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cxgraph.errors import ConfigError
from cxgraph.workspace import atomic_write_bytes

TLS_DIR = "tls"
VALID_DAYS = 825


def workspace_certificate(root: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """``(cert, key)`` of a workspace: ``WS/tls/{cert,key}.pem``, created when missing."""
    d = Path(root) / TLS_DIR
    cert, key = d / "cert.pem", d / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed(host)
    atomic_write_bytes(key, key_pem, mode=0o600)
    os.chmod(key, 0o600)
    atomic_write_bytes(cert, cert_pem, mode=0o644)
    return cert, key


def given_certificate(cert: Path, key: Path) -> tuple[Path, Path]:
    """A certificate and key the user names; both must exist."""
    for what, p in (("certificate", cert), ("key", key)):
        if not Path(p).is_file():
            raise ConfigError(f"TLS {what} {p} does not exist; pass both --tls-cert and "
                              f"--tls-key, or neither (a self-signed one is generated)")
    return Path(cert), Path(key)


def self_signed(host: str) -> tuple[bytes, bytes]:
    """PEM certificate and PEM private key (unencrypted, PKCS#8) for ``host``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    ips = {"127.0.0.1", "::1"}
    try:
        ips.add(str(ipaddress.ip_address(host)))
    except ValueError:
        if host:
            names.append(x509.DNSName(host))
    if host in ("0.0.0.0", "::"):
        names.append(x509.DNSName(socket.gethostname()))
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(ips)
              if ip not in ("0.0.0.0", "::")]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cxgraph serve"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cxgraph (self-signed)")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
