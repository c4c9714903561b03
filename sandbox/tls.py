"""A local certificate authority for the sandbox servers that must speak HTTPS.

MSAL refuses an authority that is not `https://` (see dataverse.md section 1), so the Entra sandbox is
served over TLS with a server certificate for `127.0.0.1` and `localhost`, signed by a CA made here.
Clients trust it through `ca_bundle_path` (requests' `verify=`, httpx's `verify=`, Settings.ca_bundle).

Files in `directory`: `ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem`. They are reused while they
are valid (signed by the CA, covering both names, more than a day left), else made again.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

_CA_FILE = "ca.pem"
_CA_KEY_FILE = "ca-key.pem"
_SERVER_FILE = "server.pem"
_SERVER_KEY_FILE = "server-key.pem"
_HOSTNAMES = ("localhost",)
_ADDRESSES = ("127.0.0.1",)
_CA_DAYS = 3650
_SERVER_DAYS = 825  # the longest leaf lifetime clients (Apple, browsers) accept
_MIN_REMAINING = timedelta(days=1)


@dataclass(frozen=True)
class LocalCA:
    directory: Path

    @property
    def ca_bundle_path(self) -> Path:
        return self.directory / _CA_FILE

    @property
    def server_cert_path(self) -> Path:
        return self.directory / _SERVER_FILE

    @property
    def server_key_path(self) -> Path:
        return self.directory / _SERVER_KEY_FILE

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        """Reuse the CA and server certificate in `directory` when valid, else make new ones."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(directory)
        if not ca._valid():
            ca._generate()
        return ca

    def server_ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA (for httpx/aiohttp clients in tests)."""
        return ssl.create_default_context(cafile=str(self.ca_bundle_path))

    def _valid(self) -> bool:
        paths = [self.directory / name for name in (_CA_FILE, _CA_KEY_FILE, _SERVER_FILE, _SERVER_KEY_FILE)]
        if not all(path.is_file() for path in paths):
            return False
        try:
            ca_cert = x509.load_pem_x509_certificate(self.ca_bundle_path.read_bytes())
            server_cert = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
            server_key = serialization.load_pem_private_key(self.server_key_path.read_bytes(), None)
            server_cert.verify_directly_issued_by(ca_cert)
            san = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
            logger.info("sandbox CA in %s is unreadable; making a new one", self.directory)
            return False
        names = set(san.get_values_for_type(x509.DNSName))
        addresses = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        if not set(_HOSTNAMES) <= names or not set(_ADDRESSES) <= addresses:
            return False
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if server_cert.public_key().public_bytes(*spki) != server_key.public_key().public_bytes(*spki):
            return False
        deadline = datetime.now(UTC) + _MIN_REMAINING
        return ca_cert.not_valid_after_utc > deadline and server_cert.not_valid_after_utc > deadline

    def _generate(self) -> None:
        now = datetime.now(UTC) - timedelta(minutes=5)  # tolerate small clock differences
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Xero Dynamics Connector sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Sandbox Local CA"),
        ])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName(
            [x509.DNSName(name) for name in _HOSTNAMES]
            + [x509.IPAddress(ipaddress.ip_address(address)) for address in _ADDRESSES]
        )
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _HOSTNAMES[0])]))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=_SERVER_DAYS))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        key_format = serialization.PrivateFormat.PKCS8
        no_password = serialization.NoEncryption()
        self._write(_CA_KEY_FILE, ca_key.private_bytes(pem, key_format, no_password), private=True)
        self._write(_SERVER_KEY_FILE, server_key.private_bytes(pem, key_format, no_password), private=True)
        self._write(_SERVER_FILE, server_cert.public_bytes(pem))
        # The bundle last: a reader that sees a new bundle also sees the certificate it signed.
        self._write(_CA_FILE, ca_cert.public_bytes(pem))
        logger.info("made a sandbox CA and server certificate in %s", self.directory)

    def _write(self, name: str, data: bytes, *, private: bool = False) -> None:
        # Write then rename, so a concurrent reader never sees half a file.
        target = self.directory / name
        temporary = target.with_name(f".{name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        if private:
            temporary.chmod(0o600)
        temporary.replace(target)
