"""Certificates and web config files for the secured /metrics tests (trustme's throwaway CA)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bcrypt
import trustme

USER, PASSWORD = "prometheus", "s3cret-scrape"


def bcrypt_hash(password: str) -> str:
    # Cost 4, the minimum: the tests check behaviour, not bcrypt's slowness.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


@dataclass
class Pki:
    """A CA, the server's certificate for 127.0.0.1 and a client certificate, as files."""

    directory: Path
    ca: trustme.CA

    @classmethod
    def create(cls, directory: Path) -> Pki:
        pki = cls(directory, trustme.CA())
        pki.ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        pki.issue_server("server")
        client = pki.ca.issue_cert("scraper@example.com", "scraper.example.com")
        client.private_key_and_cert_chain_pem.write_to_path(str(directory / "client.pem"))
        return pki

    def issue_server(self, name: str) -> trustme.LeafCert:
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(str(self.directory / f"{name}.crt"))
        cert.private_key_pem.write_to_path(str(self.directory / f"{name}.key"))
        return cert

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def client_file(self) -> Path:
        return self.directory / "client.pem"


def write_web_config(path: Path, body: str) -> Path:
    path.write_text(body)
    return path
