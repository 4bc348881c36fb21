#!/usr/bin/python3
# Made test/fuzz/data/{ca.pem,ca.crl,ec,rsa,revoked}.{der,pem} once (keys in the current directory,
# not kept). Rerunning makes new keys: the CMS seeds in ../corpus/cms and the certificate ids in
# ../corpus/request and ../dict/request.dict must then be made again (see README.md).
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

def name(cn, extra=()):
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Paraf Fuzz PKI"), *extra,
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
nb = datetime.datetime(2026, 1, 1)
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("Fuzz CA")).issuer_name(name("Fuzz CA"))
      .public_key(ca_key.public_key()).serial_number(1).not_valid_before(nb)
      .not_valid_after(datetime.datetime(2036, 1, 1))
      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
      .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
      .sign(ca_key, hashes.SHA256()))
POL = "1.3.6.1.4.1.55555.1.1"
def leaf(key, cn, serial, nip, eku=None, email=None):
    b = (x509.CertificateBuilder().subject_name(name(cn, [x509.NameAttribute(NameOID.SERIAL_NUMBER, "NIP" + nip)]))
         .issuer_name(ca.subject).public_key(key.public_key()).serial_number(serial)
         .not_valid_before(datetime.datetime(2026, 6, 1)).not_valid_after(datetime.datetime(2028, 5, 1))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
         .add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(POL), None)]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if email:
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    return b.sign(ca_key, hashes.SHA256())
eck = ec.generate_private_key(ec.SECP256R1())
rsak = rsa.generate_private_key(65537, 2048)
ecc = leaf(eck, "Budi Santoso", 2, "197803152005011002", [ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")], "budi@contoh.go.id")
rsac = leaf(rsak, "Siti Rahayu", 3, "198001012006042001")
revk = ec.generate_private_key(ec.SECP256R1())
revc = leaf(revk, "Revoked Person", 4, "199001012015011001")
crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
       .last_update(datetime.datetime(2026, 1, 1)).next_update(datetime.datetime(2036, 1, 1))
       .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(4)
            .revocation_date(datetime.datetime(2026, 7, 1)).build())
       .add_extension(x509.CRLNumber(1), critical=False)
       .sign(ca_key, hashes.SHA256()))
P = serialization.Encoding.PEM; D = serialization.Encoding.DER
open("ca.pem", "wb").write(ca.public_bytes(P))
open("ca.crl", "wb").write(crl.public_bytes(P))
for n, c, k in (("ec", ecc, eck), ("rsa", rsac, rsak), ("revoked", revc, revk)):
    open(n + ".der", "wb").write(c.public_bytes(D))
    open(n + ".pem", "wb").write(c.public_bytes(P))
    open(n + ".key", "wb").write(k.private_bytes(P, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open("ca.der", "wb").write(ca.public_bytes(D))
