#!/bin/sh
# make-test-pki.sh DIR: test PKI for the APNs test server, made with openssl.
#   ca.pem ca-key.pem                  a CA
#   server.pem server-key.pem          server cert for 127.0.0.1 and localhost, signed by the CA
#   client.pem client-key.pem          client cert (certificate auth), CN=com.example.certapp
#   AuthKey_TESTKEY01.p8               EC P-256 token key, PKCS#8 PEM like Apple's .p8
#   AuthKey_TESTKEY01.pub.pem          its public key
# Idempotent: files that exist are kept (delete DIR to start over).
set -eu
dir=${1:?usage: make-test-pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -s ca.pem ] || [ ! -s ca-key.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=pushpipe test CA" -keyout ca-key.pem -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    rm -f server.pem client.pem
fi

sign() { # name subject extensions
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
        -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
        -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

if [ ! -s server.pem ] || [ ! -s server-key.pem ]; then
    sign server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
fi
if [ ! -s client.pem ] || [ ! -s client-key.pem ]; then
    sign client "/CN=com.example.certapp" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
fi
if [ ! -s AuthKey_TESTKEY01.p8 ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out AuthKey_TESTKEY01.p8
    rm -f AuthKey_TESTKEY01.pub.pem
fi
if [ ! -s AuthKey_TESTKEY01.pub.pem ]; then
    openssl pkey -in AuthKey_TESTKEY01.p8 -pubout -out AuthKey_TESTKEY01.pub.pem
fi
rm -f ca.srl
chmod 644 ca.pem server.pem client.pem AuthKey_TESTKEY01.pub.pem
