-- Certificate authority: keys (encrypted at rest), issued certificates, revocations, CRL numbers.

-- The CA's keys: the root, the issuing intermediates (one per generation; `ans ca rotate` adds
-- the next) and the key that signs resolve answers. `key_pem` is an encrypted PKCS#8 PEM
-- (PBES2, AES-256-CBC) under the operator's passphrase; the plain key is never stored.
CREATE TABLE ca_keys (
  id          text PRIMARY KEY,                 -- 'root-1', 'issuing-1', 'issuing-2', 'signer-1'
  role        text NOT NULL CHECK (role IN ('root', 'issuing', 'response-signer')),
  generation  integer NOT NULL,
  key_pem     text NOT NULL CHECK (key_pem LIKE '-----BEGIN ENCRYPTED PRIVATE KEY-----%'),
  spki_der    bytea NOT NULL,                   -- public key, usable without the passphrase
  cert_der    bytea,                            -- null for the response signer
  not_after   timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (role, generation)
);

-- Every certificate ever issued. The serial is the primary key, so a serial is never reused,
-- and rows are never deleted (revocations must stay answerable).
CREATE TABLE certificates (
  serial       text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]{1,40}$'),
  seq          bigserial NOT NULL,              -- issue order: the newest of a subject wins (unique by the sequence)
  subject_id   text NOT NULL,
  fqdn         text NOT NULL,
  issuer_id    text NOT NULL,                   -- a ca_keys id (no FK: the check cost ~20% of an issuance)
  der          bytea NOT NULL,
  spki_sha256  text NOT NULL,
  not_before   timestamptz NOT NULL,
  not_after    timestamptz NOT NULL,
  revoked_at   timestamptz,
  revoked_epoch bigint,                         -- ca_state.revocations of the revoking transaction
  crl_entry    bytea,                           -- the DER CRL entry, encoded once by the CRL builder
  reason       text CHECK (reason IN ('unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged',
                 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'aACompromise')),
  CHECK ((revoked_at IS NULL) = (reason IS NULL))
);
CREATE INDEX certificates_subject ON certificates (subject_id, seq DESC);
CREATE INDEX certificates_revoked ON certificates (issuer_id, not_after) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_revoked_epoch ON certificates (revoked_epoch) WHERE revoked_epoch IS NOT NULL;
-- A key revoked for keyCompromise is never certified again.
CREATE INDEX certificates_compromised ON certificates (spki_sha256) WHERE reason = 'keyCompromise';

-- Bumped by every revocation (in the same transaction), so each process can tell cheaply
-- whether its cached CRL and status answers are stale.
CREATE TABLE ca_state (
  id           integer PRIMARY KEY CHECK (id = 1),
  revocations  bigint NOT NULL DEFAULT 0
);
INSERT INTO ca_state (id, revocations) VALUES (1, 0);

-- CRL numbers increase across every process sharing the store (RFC 5280 5.2.3).
CREATE SEQUENCE ca_crl_number;

-- The newest signed CRL of each issuing CA, so that a process started without the passphrase
-- (it cannot sign) still serves a current one. `epoch` is ca_state.revocations when it was built:
-- a CRL older than the latest revocation is never served.
CREATE TABLE ca_crls (
  issuer_id    text PRIMARY KEY REFERENCES ca_keys(id),
  crl_number   bigint NOT NULL,
  epoch        bigint NOT NULL,
  this_update  timestamptz NOT NULL,
  next_update  timestamptz NOT NULL,
  der          bytea NOT NULL
);

-- Pre-signed OCSP answers (no nonce) for the same purpose; served only while `revoked`
-- still matches the certificate's state and `next_update` has not passed.
CREATE TABLE ca_ocsp_responses (
  serial       text PRIMARY KEY REFERENCES certificates(serial),
  revoked      boolean NOT NULL,
  next_update  timestamptz NOT NULL,
  der          bytea NOT NULL
);
