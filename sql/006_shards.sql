-- Sharded and concurrent runs (docs/operations.md "Shards and concurrent
-- runs"): a run locks the scopes it loads, one advisory lock each, so that
-- runs over disjoint scopes collect side by side; what they write is
-- serialized by the run key's lock, now held for the transaction. The run
-- records its shard, the scopes it loaded, and how many of its
-- configuration's scopes another run held.

ALTER TABLE aifleet.sync_run
	ADD COLUMN shard text,
	ADD COLUMN scopes text[],
	ADD COLUMN scopes_busy integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN aifleet.sync_run.shard IS '--shard K/N of the run (its scopes are those whose hash modulo N is K); NULL for a run over every scope of its configuration.';
COMMENT ON COLUMN aifleet.sync_run.scopes IS 'The scopes the run loaded, as provider/account/region/product, sorted; NULL for runs recorded before migration 006.';
COMMENT ON COLUMN aifleet.sync_run.scopes_busy IS 'Scopes of the run''s selection that another run held when it started: not collected by this run, and not complete for it.';
