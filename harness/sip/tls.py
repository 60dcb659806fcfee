"""Why a TLS entry point cannot be reached, naming its certificate.

A refused certificate (expired, for another name, from a CA we do not trust) must read as
what it is, naming the certificate, so the user fixes the right file: the handshake is
tried as a call would, and when the check fails the certificate is fetched again without
checking and described (subject, names, issuer, validity) with `cryptography`'s X.509
reader.
"""
from __future__ import annotations

import socket
import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID

from harness.sip.transport import TlsSettings, TlsTransport


def describe(der: bytes) -> str:
    """Subject, names, issuer and validity of a DER certificate, in one line."""
    cert = x509.load_der_x509_certificate(der)

    def cn(name: x509.Name) -> str:
        found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(found[0].value) if found else name.rfc4514_string()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)] + \
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return (f"certificate CN={cn(cert.subject)}, names [{', '.join(names) or 'none'}], "
            f"issued by CN={cn(cert.issuer)}, valid {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}")


def certificate_problem(remote: tuple[str, int], local_ip: str, tls: TlsSettings,
                        timeout: float = 3.0) -> str | None:
    """None when a TLS connection to `remote` opens with these checks; else why not, naming
    the server's certificate when it was the certificate that was refused."""
    try:
        TlsTransport.open(remote, local_ip, timeout, tls).close()
        return None
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or str(exc)
    except OSError as exc:
        return f"TLS connection failed: {exc.strerror or exc}"
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(remote, timeout=timeout, source_address=(local_ip, 0)) as raw, \
                ctx.wrap_socket(raw, server_hostname=tls.server_name or remote[0]) as sock:
            der = sock.getpeercert(binary_form=True)
    except OSError:
        der = None
    expected = tls.server_name or remote[0]
    return (f"TLS certificate refused: {why} (expected name {expected}"
            + (f", CA file {tls.ca_file}" if tls.ca_file else ", the system's CAs") + ")"
            + (f"; the server sent {describe(der)}" if der else ""))
