-- The read side, faster, with the same answers (docs/schema.md "Views and
-- functions"). No table changes; one index of history is redefined.
--
--   * fleet_as_of(ts) is a plain SQL function over a new view,
--     aifleet.entity_versions (every version with its full row), so the
--     planner inlines it into the calling query. A SECURITY DEFINER
--     function is never inlined: its answer was put into a tuplestore,
--     and only then sent, each open version's to_jsonb built whether the
--     caller wanted it or not. Inlined, the rows stream from parallel
--     workers while they are sent, and a caller that does not read
--     content (counts, names, a filter on entity_type or product) no
--     longer builds the JSON of 300k current rows. The reader's access
--     is unchanged in substance: it reads the view as it read the
--     function (a view reads its tables with its owner's rights).
--   * change_feed scans history once: each row takes its names from its
--     content, or from its current row found by primary key in a LATERAL
--     subquery whose branches are gated by entity_type, so one index
--     probe per open version and none per closed one. The UNION ALL of
--     four branches scanned history four times for a feed of a few runs,
--     and was planned as hash joins over whole tables for a feed of a
--     few days (all rows of the feed were computed, then sorted).
--   * history_run indexes (run_id, id) instead of (run_id): the rows of a
--     feed of the last runs then come out of it in the feed's order (the
--     changes of one run share changed_at, and ids grow with runs), so the
--     sort finds its input sorted in one pass instead of breaking every
--     tie by seq, a column behind eleven others. Cost: the index no
--     longer deduplicates (about 30 bytes a history row instead of 7);
--     inserting 1.3M rows one by one costs about 0.1 s more, which the
--     loader benchmark does not resolve (docs/schema.md, "History").
--
-- The answers are those of 003 for the same history: the same rows, the
-- same columns and types (CREATE OR REPLACE refuses a change of either),
-- the same grants; tests/store/test_migrate.c compares them on a history
-- with updates, deletions and restorations.

-- Versions as 003's fleet_as_of read them: a closed version (and an open
-- one that kept a stored content) from history.content, an open version
-- with NULL content from its current row. Deletion markers are no
-- version (their period is empty) and are left out.
CREATE VIEW aifleet.entity_versions AS
SELECT h.entity_type, h.entity_id, h.content ->> 'provider' AS provider,
	h.content ->> 'account' AS account, h.content ->> 'region' AS region,
	h.content ->> 'product' AS product,
	CASE h.entity_type WHEN 'resource'
		THEN (h.content ->> 'owner_native_id') || '/' || (h.content ->> 'kind')
		ELSE h.content ->> 'native_id' END AS native_id,
	CASE h.entity_type WHEN 'resource' THEN h.content ->> 'kind' ELSE h.content ->> 'name' END AS name,
	h.valid, h.content
FROM aifleet.history h
WHERE h.content IS NOT NULL AND NOT isempty(h.valid)
UNION ALL
SELECT 'instance', t.id, t.provider, t.account, t.region, t.product, t.native_id, t.name,
	h.valid, to_jsonb(t)
FROM aifleet.history h JOIN aifleet.instance t ON t.id = h.entity_id
WHERE h.entity_type = 'instance' AND h.content IS NULL
UNION ALL
SELECT 'service', t.id, t.provider, t.account, t.region, t.product, t.native_id, t.name,
	h.valid, to_jsonb(t)
FROM aifleet.history h JOIN aifleet.service t ON t.id = h.entity_id
WHERE h.entity_type = 'service' AND h.content IS NULL
UNION ALL
SELECT 'resource', t.id, t.provider, t.account, t.region, t.product,
	t.owner_native_id || '/' || t.kind, t.kind, h.valid, to_jsonb(t)
FROM aifleet.history h JOIN aifleet.resource t ON t.id = h.entity_id
WHERE h.entity_type = 'resource' AND h.content IS NULL;
COMMENT ON VIEW aifleet.entity_versions IS 'Every version of every instance, service and resource (deletion markers left out), with its full row; an open version is read from the current row. fleet_as_of(ts) is its rows whose valid contains ts.';
COMMENT ON COLUMN aifleet.entity_versions.entity_type IS 'instance, service or resource.';
COMMENT ON COLUMN aifleet.entity_versions.entity_id IS 'Id of the entity (aifleet.instance.id, service.id or resource.id).';
COMMENT ON COLUMN aifleet.entity_versions.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.entity_versions.account IS 'Account label.';
COMMENT ON COLUMN aifleet.entity_versions.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.entity_versions.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.entity_versions.native_id IS 'Provider id (for resources: owner id/kind).';
COMMENT ON COLUMN aifleet.entity_versions.name IS 'Name of the entity in this version (for resources: the kind).';
COMMENT ON COLUMN aifleet.entity_versions.valid IS 'Period this version was current: [run start, next change), or [run start,) while current.';
COMMENT ON COLUMN aifleet.entity_versions.content IS 'Full row of this version (to_jsonb of the entity row).';
GRANT SELECT ON aifleet.entity_versions TO aifleet_reader;

-- Neither SECURITY DEFINER nor SET (either keeps a function from being
-- inlined): the caller reads the view, which aifleet_reader may. The
-- function names only schema-qualified relations; the operators and
-- functions of its body come from pg_catalog. PARALLEL SAFE: the planner
-- judges parallel safety before it inlines, on the function's marking.
-- For an open version (content NULL: not empty and unbounded above, by
-- history_content_when_closed; the loader writes [run start,)) "valid @>
-- ts" is 003's "lower(valid) <= ts", as 003 itself says.
CREATE OR REPLACE FUNCTION aifleet.fleet_as_of(ts timestamptz)
RETURNS TABLE (entity_type text, entity_id bigint, provider text, account text, region text,
	product text, native_id text, name text, valid tstzrange, content jsonb)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER AS $$
	SELECT v.entity_type, v.entity_id, v.provider, v.account, v.region, v.product,
		v.native_id, v.name, v.valid, v.content
	FROM aifleet.entity_versions v
	WHERE v.valid @> ts
$$;

-- One scan of history; the names of a closed version (and of a deletion
-- marker) come from its content, those of an open one from its current
-- row. Each branch of the LATERAL is gated by a condition on the history
-- row alone, which the planner makes a one-time filter: per row, one
-- branch runs, and for an open version it is one primary-key probe.
-- CROSS JOIN, as 003's inner joins: a row whose entity is missing from
-- its table (aifleet never deletes one) would be left out as before.
CREATE OR REPLACE VIEW aifleet.change_feed AS
SELECT h.changed_at AS time, h.run_id, h.change, h.entity_type,
	e.provider, e.account, e.region, e.product, e.native_id, e.name, h.diff, h.id AS seq
FROM aifleet.history h
CROSS JOIN LATERAL (
	SELECT h.content ->> 'provider' AS provider, h.content ->> 'account' AS account,
		h.content ->> 'region' AS region, h.content ->> 'product' AS product,
		CASE h.entity_type WHEN 'resource'
			THEN (h.content ->> 'owner_native_id') || '/' || (h.content ->> 'kind')
			ELSE h.content ->> 'native_id' END AS native_id,
		CASE h.entity_type WHEN 'resource' THEN h.content ->> 'kind' ELSE h.content ->> 'name' END AS name
	WHERE h.content IS NOT NULL
	UNION ALL
	SELECT t.provider, t.account, t.region, t.product, t.native_id, t.name
	FROM aifleet.instance t
	WHERE h.entity_type = 'instance' AND h.content IS NULL AND t.id = h.entity_id
	UNION ALL
	SELECT t.provider, t.account, t.region, t.product, t.native_id, t.name
	FROM aifleet.service t
	WHERE h.entity_type = 'service' AND h.content IS NULL AND t.id = h.entity_id
	UNION ALL
	SELECT t.provider, t.account, t.region, t.product, t.owner_native_id || '/' || t.kind, t.kind
	FROM aifleet.resource t
	WHERE h.entity_type = 'resource' AND h.content IS NULL AND t.id = h.entity_id
) e;

-- The feed's index by run, in the feed's order (see the header).
DROP INDEX aifleet.history_run;
CREATE INDEX history_run ON aifleet.history (run_id, id);
