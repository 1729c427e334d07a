-- A technician's request for access at a customer (issue 29) is a phone challenge like a
-- sign-in: the same numbers, expiry, approve and deny, and the same cancellation when the
-- technician's access ends. `purpose` tells them apart; an access request names the customer
-- and the Entra role template ids asked for (a JSON array), and is bound to the signed-in
-- session that asked (`binding_hash` = `session:` and the session's index id), with
-- `user_id` the requester from the start.
ALTER TABLE login_challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'sign_in';
ALTER TABLE login_challenges ADD COLUMN customer_id TEXT;
ALTER TABLE login_challenges ADD COLUMN roles TEXT;
