-- The load path at COPY speed (docs/schema.md "History model"):
--
--   * compact history: an open version's content is the current row, so
--     history.content is NULL while a version is open and is written when
--     the version closes (update, tombstone);
--   * btree keys instead of the GiST exclusion constraint: one open version
--     per entity, one version start per entity, and the feed's index. That
--     two versions of one entity never overlap is the loader's to keep (one
--     writer, under the run lock, closes the open version before it opens
--     the next); the tests check it on histories built by many runs;
--   * no per-row foreign keys: the loader resolves owners in the merge,
--     rejects orphans and checks every row it wrote once per run;
--   * the scope ledger keeps a digest of what a clean run saw, so an
--     unchanged scope is not loaded again;
--   * btree_gist, no longer needed, leaves schema aifleet.
--
-- The read side keeps its contract: the views and as-of functions answer
-- as before for the same history; aifleet.entity_history is new.

ALTER TABLE aifleet.history DROP CONSTRAINT history_no_overlap;
DROP INDEX aifleet.history_changed_at_idx;
DROP INDEX aifleet.history_open_idx;

-- Open versions whose content is exactly the current row lose the copy. A
-- version whose content differs (nothing aifleet wrote does) keeps it, and
-- the read side prefers a stored content over the current row.
ALTER TABLE aifleet.history ALTER COLUMN content DROP NOT NULL;
UPDATE aifleet.history h SET content = NULL FROM aifleet.instance t
WHERE h.entity_type = 'instance' AND h.entity_id = t.id AND upper_inf(h.valid)
	AND NOT isempty(h.valid) AND h.content = to_jsonb(t);
UPDATE aifleet.history h SET content = NULL FROM aifleet.service t
WHERE h.entity_type = 'service' AND h.entity_id = t.id AND upper_inf(h.valid)
	AND NOT isempty(h.valid) AND h.content = to_jsonb(t);
UPDATE aifleet.history h SET content = NULL FROM aifleet.resource t
WHERE h.entity_type = 'resource' AND h.entity_id = t.id AND upper_inf(h.valid)
	AND NOT isempty(h.valid) AND h.content = to_jsonb(t);
ALTER TABLE aifleet.history ADD CONSTRAINT history_content_when_closed
	CHECK (content IS NOT NULL OR (upper_inf(valid) AND NOT isempty(valid)));

CREATE UNIQUE INDEX history_open_version ON aifleet.history (entity_id)
	WHERE upper_inf(valid) AND NOT isempty(valid);
-- Deletion markers have no lower bound (NULL), so any number of them fit;
-- the index also serves one entity's versions (aifleet.entity_history).
CREATE UNIQUE INDEX history_version_start ON aifleet.history (entity_id, lower(valid));
-- The change feed by time (dashboards) and by run ("the last 10 runs").
CREATE INDEX history_feed ON aifleet.history (changed_at, id);
CREATE INDEX history_run ON aifleet.history (run_id);

COMMENT ON COLUMN aifleet.history.valid IS 'Period this version was current: [run start, next change) or [run start,) while current; empty for deletion markers. One open version and one version start per entity (unique indexes); the loader never lets two versions of an entity overlap.';
COMMENT ON COLUMN aifleet.history.content IS 'Full row of this version (to_jsonb of the entity row) once the version is closed, and for deletion markers; NULL while the version is open: the current row in aifleet.<entity_type> is its content.';

ALTER TABLE aifleet.service DROP CONSTRAINT service_instance_id_fkey;
ALTER TABLE aifleet.resource DROP CONSTRAINT resource_instance_id_fkey;
ALTER TABLE aifleet.resource DROP CONSTRAINT resource_service_id_fkey;
COMMENT ON COLUMN aifleet.service.instance_id IS 'The instance the service runs on (aifleet.instance.id; resolved by the loader, which checks every row it writes, instead of a per-row foreign key).';
COMMENT ON COLUMN aifleet.resource.instance_id IS 'Owning instance when owner_kind = instance (checked by the loader, as service.instance_id).';
COMMENT ON COLUMN aifleet.resource.service_id IS 'Owning service when owner_kind = service (checked by the loader, as service.instance_id).';

ALTER TABLE aifleet.scope_state ADD COLUMN digest bytea;
COMMENT ON COLUMN aifleet.scope_state.digest IS 'Order-independent digest of the records the last clean run saw (complete, nothing rejected, no duplicate, nothing held), NULL otherwise. A run whose records give the same digest loads nothing for the scope: only this ledger row moves.';

-- btree_gist served only the exclusion constraint. Where 001 put it into
-- schema aifleet (its 200+ gbt_* functions flooded \df aifleet.*), it goes;
-- if something of the user's came to depend on it, it moves to public.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		   WHERE e.extname = 'btree_gist' AND n.nspname = 'aifleet') THEN
		BEGIN
			DROP EXTENSION btree_gist;
		EXCEPTION WHEN dependent_objects_still_exist THEN
			ALTER EXTENSION btree_gist SET SCHEMA public;
		END;
	END IF;
END
$$;

-- ==== Read side over the compact history ====
-- Closed versions and deletion markers carry their content; open versions
-- are read from the current tables (an open version's validity ends never,
-- so "valid @> ts" is "lower(valid) <= ts"). jsonb_populate_record is called
-- in a LATERAL, once per row: "(f(x)).*" would call it once per column.

CREATE OR REPLACE FUNCTION aifleet.fleet_as_of(ts timestamptz)
RETURNS TABLE (entity_type text, entity_id bigint, provider text, account text, region text,
	product text, native_id text, name text, valid tstzrange, content jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT h.entity_type, h.entity_id, h.content ->> 'provider', h.content ->> 'account',
		h.content ->> 'region', h.content ->> 'product',
		CASE h.entity_type WHEN 'resource'
			THEN (h.content ->> 'owner_native_id') || '/' || (h.content ->> 'kind')
			ELSE h.content ->> 'native_id' END,
		CASE h.entity_type WHEN 'resource' THEN h.content ->> 'kind' ELSE h.content ->> 'name' END,
		h.valid, h.content
	FROM aifleet.history h
	WHERE h.content IS NOT NULL AND h.valid @> ts
	UNION ALL
	SELECT 'instance', t.id, t.provider, t.account, t.region, t.product, t.native_id, t.name,
		h.valid, to_jsonb(t)
	FROM aifleet.history h JOIN aifleet.instance t ON t.id = h.entity_id
	WHERE h.entity_type = 'instance' AND h.content IS NULL AND lower(h.valid) <= ts
	UNION ALL
	SELECT 'service', t.id, t.provider, t.account, t.region, t.product, t.native_id, t.name,
		h.valid, to_jsonb(t)
	FROM aifleet.history h JOIN aifleet.service t ON t.id = h.entity_id
	WHERE h.entity_type = 'service' AND h.content IS NULL AND lower(h.valid) <= ts
	UNION ALL
	SELECT 'resource', t.id, t.provider, t.account, t.region, t.product,
		t.owner_native_id || '/' || t.kind, t.kind, h.valid, to_jsonb(t)
	FROM aifleet.history h JOIN aifleet.resource t ON t.id = h.entity_id
	WHERE h.entity_type = 'resource' AND h.content IS NULL AND lower(h.valid) <= ts
$$;

CREATE OR REPLACE FUNCTION aifleet.instances_as_of(ts timestamptz) RETURNS SETOF aifleet.instance
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT r.*
	FROM aifleet.history h CROSS JOIN LATERAL jsonb_populate_record(NULL::aifleet.instance, h.content) r
	WHERE h.entity_type = 'instance' AND h.content IS NOT NULL AND h.valid @> ts
	UNION ALL
	SELECT t.* FROM aifleet.history h JOIN aifleet.instance t ON t.id = h.entity_id
	WHERE h.entity_type = 'instance' AND h.content IS NULL AND lower(h.valid) <= ts
$$;

CREATE OR REPLACE FUNCTION aifleet.services_as_of(ts timestamptz) RETURNS SETOF aifleet.service
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT r.*
	FROM aifleet.history h CROSS JOIN LATERAL jsonb_populate_record(NULL::aifleet.service, h.content) r
	WHERE h.entity_type = 'service' AND h.content IS NOT NULL AND h.valid @> ts
	UNION ALL
	SELECT t.* FROM aifleet.history h JOIN aifleet.service t ON t.id = h.entity_id
	WHERE h.entity_type = 'service' AND h.content IS NULL AND lower(h.valid) <= ts
$$;

CREATE OR REPLACE FUNCTION aifleet.resources_as_of(ts timestamptz) RETURNS SETOF aifleet.resource
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT r.*
	FROM aifleet.history h CROSS JOIN LATERAL jsonb_populate_record(NULL::aifleet.resource, h.content) r
	WHERE h.entity_type = 'resource' AND h.content IS NOT NULL AND h.valid @> ts
	UNION ALL
	SELECT t.* FROM aifleet.history h JOIN aifleet.resource t ON t.id = h.entity_id
	WHERE h.entity_type = 'resource' AND h.content IS NULL AND lower(h.valid) <= ts
$$;

-- The same columns as before, so CREATE OR REPLACE keeps the grants. One
-- branch per kind of row, so that a feed of a few runs joins each open
-- version to its current row by primary key (a single scan with three
-- LEFT JOINs was planned as hash joins over the whole tables: 3x slower
-- on the feed of the last 10 of 100 runs).
CREATE OR REPLACE VIEW aifleet.change_feed AS
SELECT h.changed_at AS time, h.run_id, h.change, h.entity_type,
	h.content ->> 'provider' AS provider, h.content ->> 'account' AS account,
	h.content ->> 'region' AS region, h.content ->> 'product' AS product,
	CASE h.entity_type WHEN 'resource'
		THEN (h.content ->> 'owner_native_id') || '/' || (h.content ->> 'kind')
		ELSE h.content ->> 'native_id' END AS native_id,
	CASE h.entity_type WHEN 'resource' THEN h.content ->> 'kind' ELSE h.content ->> 'name' END AS name,
	h.diff, h.id AS seq
FROM aifleet.history h WHERE h.content IS NOT NULL
UNION ALL
SELECT h.changed_at, h.run_id, h.change, h.entity_type, t.provider, t.account, t.region,
	t.product, t.native_id, t.name, h.diff, h.id
FROM aifleet.history h JOIN aifleet.instance t ON t.id = h.entity_id
WHERE h.entity_type = 'instance' AND h.content IS NULL
UNION ALL
SELECT h.changed_at, h.run_id, h.change, h.entity_type, t.provider, t.account, t.region,
	t.product, t.native_id, t.name, h.diff, h.id
FROM aifleet.history h JOIN aifleet.service t ON t.id = h.entity_id
WHERE h.entity_type = 'service' AND h.content IS NULL
UNION ALL
SELECT h.changed_at, h.run_id, h.change, h.entity_type, t.provider, t.account, t.region,
	t.product, t.owner_native_id || '/' || t.kind, t.kind, h.diff, h.id
FROM aifleet.history h JOIN aifleet.resource t ON t.id = h.entity_id
WHERE h.entity_type = 'resource' AND h.content IS NULL;

-- One entity's versions, oldest first, deletion markers included. The
-- entity is named as in the change feed: native_id, and for a resource
-- owner_native_id/kind.
CREATE FUNCTION aifleet.entity_history(provider text, account text, product text, native_id text)
RETURNS TABLE (entity_type text, entity_id bigint, valid tstzrange, change text,
	changed_at timestamptz, run_id bigint, diff jsonb, content jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
-- plpgsql, not sql: its plans are kept for the session, so a dashboard
-- that asks entity after entity pays the planning once.
DECLARE
	e_type text;
	e_id bigint;
	e_row jsonb;
	cut int := strpos(reverse($4), '/');
BEGIN
	SELECT 'instance', t.id, to_jsonb(t) INTO e_type, e_id, e_row FROM aifleet.instance t
	WHERE (t.provider, t.account, t.product, t.native_id) = ($1, $2, $3, $4);
	IF e_id IS NULL THEN
		SELECT 'service', t.id, to_jsonb(t) INTO e_type, e_id, e_row FROM aifleet.service t
		WHERE (t.provider, t.account, t.product, t.native_id) = ($1, $2, $3, $4);
	END IF;
	IF e_id IS NULL AND cut > 0 THEN
		SELECT 'resource', t.id, to_jsonb(t) INTO e_type, e_id, e_row FROM aifleet.resource t
		WHERE (t.provider, t.account, t.product) = ($1, $2, $3)
			AND t.owner_kind IN ('instance', 'service')
			AND t.owner_native_id = left($4, length($4) - cut)
			AND t.kind = right($4, cut - 1);
	END IF;
	RETURN QUERY
		SELECT e_type, h.entity_id, h.valid, h.change, h.changed_at, h.run_id, h.diff,
			coalesce(h.content, e_row)
		FROM aifleet.history h WHERE h.entity_id = e_id
		ORDER BY h.changed_at, h.id;
END
$$;
COMMENT ON FUNCTION aifleet.entity_history(text, text, text, text) IS 'Every version of one entity (named by provider, account, product and native_id; a resource as owner_native_id/kind), oldest first, deletion markers included; content is the full row of each version.';
REVOKE EXECUTE ON FUNCTION aifleet.entity_history(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aifleet.entity_history(text, text, text, text) TO aifleet_reader;

ALTER TABLE aifleet.sync_run ADD COLUMN scopes_skipped integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN aifleet.sync_run.scopes_skipped IS 'Complete scopes whose records matched the digest of their last clean run, so nothing of them was loaded (counted in scopes_complete too).';
