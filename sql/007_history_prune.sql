-- History retention (docs/operations.md "History retention"): `aifleet
-- prune` deletes the versions that ended before a cutoff, and the deletion
-- markers of before it, in batches, each its own transaction. Every prune
-- is recorded here, so that `aifleet status` (and anyone) can tell from
-- when on the as-of answers are complete.

CREATE TABLE aifleet.history_prune (
	id bigserial PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	cutoff timestamptz NOT NULL,
	status text NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
	versions bigint NOT NULL DEFAULT 0,
	markers bigint NOT NULL DEFAULT 0,
	scopes integer NOT NULL DEFAULT 0,
	scopes_busy integer NOT NULL DEFAULT 0,
	error text
);
COMMENT ON TABLE aifleet.history_prune IS 'One row per aifleet prune (dry runs are not recorded).';
COMMENT ON COLUMN aifleet.history_prune.id IS 'Prune id.';
COMMENT ON COLUMN aifleet.history_prune.started_at IS 'Start of the prune.';
COMMENT ON COLUMN aifleet.history_prune.finished_at IS 'End of the prune, however it ended; NULL while it runs (or if it was killed).';
COMMENT ON COLUMN aifleet.history_prune.cutoff IS 'Versions that ended at or before this time, and deletion markers before it, were deleted.';
COMMENT ON COLUMN aifleet.history_prune.status IS 'running, finished or failed. A failed or killed prune deleted part of what it meant to: each entity keeps a contiguous run of its latest versions either way.';
COMMENT ON COLUMN aifleet.history_prune.versions IS 'Closed versions deleted.';
COMMENT ON COLUMN aifleet.history_prune.markers IS 'Deletion markers deleted.';
COMMENT ON COLUMN aifleet.history_prune.scopes IS 'Scopes whose history the prune went through (it held their locks).';
COMMENT ON COLUMN aifleet.history_prune.scopes_busy IS 'Scopes another run held: their history was left as it was.';
COMMENT ON COLUMN aifleet.history_prune.error IS 'Why a failed prune stopped.';

-- What history holds, and from when on the as-of answers are complete:
-- the first run's start, or the latest cutoff of any prune that began
-- (finished or not), whichever is later.
CREATE VIEW aifleet.history_span AS
SELECT (SELECT count(*) FROM aifleet.history) AS history_rows,
	greatest((SELECT min(started_at) FROM aifleet.sync_run),
		(SELECT max(cutoff) FROM aifleet.history_prune)) AS complete_from,
	(SELECT max(cutoff) FROM aifleet.history_prune) AS pruned_before,
	(SELECT max(started_at) FROM aifleet.history_prune) AS last_prune_at;
COMMENT ON VIEW aifleet.history_span IS 'How much history there is, and from when on as-of answers (fleet_as_of, instances_as_of, ...) are complete.';
COMMENT ON COLUMN aifleet.history_span.history_rows IS 'Rows of aifleet.history (versions and deletion markers).';
COMMENT ON COLUMN aifleet.history_span.complete_from IS 'As-of answers for this time and later are complete: the first run''s start, or the latest prune cutoff.';
COMMENT ON COLUMN aifleet.history_span.pruned_before IS 'The latest prune cutoff; NULL if history was never pruned.';
COMMENT ON COLUMN aifleet.history_span.last_prune_at IS 'Start of the latest prune; NULL if none.';

GRANT SELECT ON aifleet.history_prune, aifleet.history_span TO aifleet_reader;
