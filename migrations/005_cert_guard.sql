-- A key revoked for keyCompromise is never certified again. The INSERTs of the CA's own
-- group path filter such rows; this trigger is the rule for every writer, and it lets the
-- registry store a certificate in the same statement as the agent's other writes.
CREATE FUNCTION certificates_refuse_compromised() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM certificates WHERE spki_sha256 = NEW.spki_sha256 AND reason = 'keyCompromise') THEN
    RAISE EXCEPTION 'this public key was revoked for keyCompromise' USING ERRCODE = 'AN001';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER certificates_refuse_compromised BEFORE INSERT ON certificates
  FOR EACH ROW EXECUTE FUNCTION certificates_refuse_compromised();
