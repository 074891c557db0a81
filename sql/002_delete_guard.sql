-- The mass-delete guard: a complete scope that would tombstone more than
-- [sync] max_delete_fraction of its live entities (and more than
-- max_delete_min) is held instead -- nothing in it is tombstoned -- until
-- an operator accepts with `aifleet sync --allow-deletes SCOPE`.

ALTER TABLE aifleet.scope_state DROP CONSTRAINT scope_state_last_state_check;
ALTER TABLE aifleet.scope_state ADD CONSTRAINT scope_state_last_state_check
	CHECK (last_state IN ('complete', 'partial', 'failed', 'held'));
ALTER TABLE aifleet.scope_state
	ADD COLUMN held_deletes bigint,
	ADD COLUMN held_live bigint;
COMMENT ON COLUMN aifleet.scope_state.last_state IS 'complete, partial (incl. rejected records or not reported), failed, or held (collected completely, but the tombstones it would write were held by the mass-delete guard), as of the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.held_deletes IS 'When last_state is held: the entities (instances, services and resources) the run would have tombstoned; NULL otherwise.';
COMMENT ON COLUMN aifleet.scope_state.held_live IS 'When last_state is held: the live entities the scope had before the run; NULL otherwise.';

ALTER TABLE aifleet.sync_run ADD COLUMN scopes_held integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN aifleet.sync_run.scopes_held IS 'Scopes collected completely whose tombstones the mass-delete guard held (counted in scopes_partial too).';

CREATE OR REPLACE VIEW aifleet.scope_freshness AS
SELECT provider, account, region, product, last_state, last_attempt_at, last_complete_at,
	now() - last_complete_at AS age, last_error, last_run_id, held_deletes, held_live
FROM aifleet.scope_state;
COMMENT ON COLUMN aifleet.scope_freshness.last_state IS 'complete, partial, failed or held.';
COMMENT ON COLUMN aifleet.scope_freshness.held_deletes IS 'Tombstones held by the mass-delete guard in the last attempt (NULL unless held).';
COMMENT ON COLUMN aifleet.scope_freshness.held_live IS 'Live entities of the scope before that attempt (NULL unless held).';
