-- Registry, change feed, audit log, admin tokens, replay guard, gateway policies.

-- Every change anyone makes gets the next seq; projections (DNS, vectors, federation) apply
-- them in order and remember the last one applied.
CREATE TABLE changes (
  seq        bigserial PRIMARY KEY,
  entity     text NOT NULL,            -- 'agent', 'policy', ...
  entity_id  text NOT NULL,
  kind       text NOT NULL,            -- 'agent.changed', ...
  at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
  id              text PRIMARY KEY,
  label           text NOT NULL,
  zone            text NOT NULL,
  fqdn            text NOT NULL,
  status          text NOT NULL CHECK (status IN ('pending','rejected','active','suspended','revoked','deregistered')),
  version         text NOT NULL,
  card            jsonb NOT NULL,
  csr             text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  last_heartbeat  timestamptz,
  -- The current certificate, denormalised for the DNS TLSA projection.
  cert_serial     text,
  spki_sha256     text
);
-- A label is taken while its agent is pending, active, suspended or revoked.
CREATE UNIQUE INDEX agents_fqdn_live ON agents (fqdn)
  WHERE status IN ('pending','active','suspended','revoked');
CREATE INDEX agents_status ON agents (status, id);

CREATE TABLE agent_versions (
  agent_id    text NOT NULL REFERENCES agents(id),
  version     text NOT NULL,
  card        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agent_id, version)
);

-- Audit entries are written here inside the transaction that makes the change (no lock, so
-- writers never queue), then moved into audit_log in batches by one chainer at a time.
CREATE TABLE audit_outbox (
  id       bigserial PRIMARY KEY,
  at       timestamptz NOT NULL,
  actor    text NOT NULL,
  action   text NOT NULL,
  subject  text,
  detail   jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Hash-chained: hash = sha256(prev_hash || canonical entry); editing a row breaks the chain.
CREATE TABLE audit_log (
  seq        bigint PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text NOT NULL,
  action     text NOT NULL,
  subject    text,
  detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash  text NOT NULL,
  hash       text NOT NULL
);

CREATE TABLE admin_tokens (
  id          text PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  token_hash  text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- A registry change never accepts the same agent JWT id twice.
CREATE TABLE used_jti (
  jti  text PRIMARY KEY,
  exp  timestamptz NOT NULL
);
CREATE INDEX used_jti_exp ON used_jti (exp);

CREATE TABLE policies (
  id          text PRIMARY KEY,
  caller      text NOT NULL,
  target      text NOT NULL,
  effect      text NOT NULL CHECK (effect IN ('allow','deny')),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Small process-wide facts shared by every `ans serve` on this store.
CREATE TABLE settings (
  key    text PRIMARY KEY,
  value  jsonb NOT NULL
);
