-- Gateway state shared by every `ans serve` on the store.

-- Calls held for human approval. The process that holds the call (it has the caller's
-- connection) inserts the ticket; any process may decide it. Every move out of 'pending' is a
-- compare-and-set (UPDATE ... WHERE status = 'pending'), so exactly one verdict wins.
CREATE TABLE gateway_approvals (
  id          text PRIMARY KEY,
  caller      text NOT NULL,
  caller_id   text NOT NULL,
  target      text NOT NULL,
  skill       text,
  method      text NOT NULL,
  path        text NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  status      text NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'approved', 'denied', 'timeout', 'cancelled')),
  decided_by  text,
  decided_at  timestamptz
);
CREATE INDEX gateway_approvals_pending ON gateway_approvals (created_at) WHERE status = 'pending';

-- The interaction graph: each process adds its counts per (caller, target) every second.
CREATE TABLE gateway_edges (
  caller    text NOT NULL,
  target    text NOT NULL,
  calls     bigint NOT NULL,
  errors    bigint NOT NULL,
  denied    bigint NOT NULL,
  total_ms  double precision NOT NULL,
  first_at  timestamptz NOT NULL,
  last_at   timestamptz NOT NULL,
  PRIMARY KEY (caller, target)
);
