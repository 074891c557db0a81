-- aifleet schema: current tables, SCD type 2 history, run log and scope ledger,
-- views for BI, as-of functions, the change feed and the read-only role.
-- Applied by af_store_migrate() in one transaction; aifleet.schema_migrations
-- (the bookkeeping table) is created by the C code, not here.
-- One file for now: the build embeds only a single migration correctly until
-- the top-level add_custom_command passes the file list VERBATIM.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE SCHEMA IF NOT EXISTS aifleet;
COMMENT ON SCHEMA aifleet IS 'AI inference fleet inventory collected by aifleet (Alibaba Cloud Tair KVCache, Hologres AI nodes, Tencent Cloud TI-ONE).';

-- One row per `aifleet sync` that committed. A run that fails commits nothing,
-- so it leaves no row here (its error goes to the exit code and the log).
CREATE TABLE aifleet.sync_run (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	status text NOT NULL DEFAULT 'running'
		CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'dry_run')),
	trigger text,
	tool_version text NOT NULL,
	instances_staged bigint NOT NULL DEFAULT 0,
	instances_created bigint NOT NULL DEFAULT 0,
	instances_updated bigint NOT NULL DEFAULT 0,
	instances_deleted bigint NOT NULL DEFAULT 0,
	instances_restored bigint NOT NULL DEFAULT 0,
	instances_unchanged bigint NOT NULL DEFAULT 0,
	services_staged bigint NOT NULL DEFAULT 0,
	services_created bigint NOT NULL DEFAULT 0,
	services_updated bigint NOT NULL DEFAULT 0,
	services_deleted bigint NOT NULL DEFAULT 0,
	services_restored bigint NOT NULL DEFAULT 0,
	services_unchanged bigint NOT NULL DEFAULT 0,
	resources_staged bigint NOT NULL DEFAULT 0,
	resources_created bigint NOT NULL DEFAULT 0,
	resources_updated bigint NOT NULL DEFAULT 0,
	resources_deleted bigint NOT NULL DEFAULT 0,
	resources_restored bigint NOT NULL DEFAULT 0,
	resources_unchanged bigint NOT NULL DEFAULT 0,
	history_rows bigint NOT NULL DEFAULT 0,
	scopes_complete integer NOT NULL DEFAULT 0,
	scopes_partial integer NOT NULL DEFAULT 0,
	scopes_failed integer NOT NULL DEFAULT 0,
	rejected bigint NOT NULL DEFAULT 0,
	error text
);
COMMENT ON TABLE aifleet.sync_run IS 'One row per committed synchronization run (failed runs commit nothing and leave no row; dry runs are rolled back).';
COMMENT ON COLUMN aifleet.sync_run.id IS 'Run id, referenced by history and the scope ledger.';
COMMENT ON COLUMN aifleet.sync_run.started_at IS 'Start of the run''s transaction; every change of the run carries this time.';
COMMENT ON COLUMN aifleet.sync_run.finished_at IS 'Wall-clock time the merge finished (just before COMMIT).';
COMMENT ON COLUMN aifleet.sync_run.status IS 'succeeded (every reported scope complete), partial (some scope partial, failed, rejected records or unreported), failed (no scope complete), running/dry_run (never visible after commit).';
COMMENT ON COLUMN aifleet.sync_run.trigger IS 'Free text saying what started the run, e.g. "aifleet sync".';
COMMENT ON COLUMN aifleet.sync_run.tool_version IS 'aifleet version that wrote the run.';
COMMENT ON COLUMN aifleet.sync_run.instances_staged IS 'Instance records received (after de-duplication of natural keys).';
COMMENT ON COLUMN aifleet.sync_run.instances_created IS 'Instances seen for the first time.';
COMMENT ON COLUMN aifleet.sync_run.instances_updated IS 'Instances whose content changed.';
COMMENT ON COLUMN aifleet.sync_run.instances_deleted IS 'Instances tombstoned (absent from a complete scope).';
COMMENT ON COLUMN aifleet.sync_run.instances_restored IS 'Tombstoned instances that reappeared.';
COMMENT ON COLUMN aifleet.sync_run.instances_unchanged IS 'Instances seen with identical content (not written).';
COMMENT ON COLUMN aifleet.sync_run.services_staged IS 'Service records received (after de-duplication).';
COMMENT ON COLUMN aifleet.sync_run.services_created IS 'Services seen for the first time.';
COMMENT ON COLUMN aifleet.sync_run.services_updated IS 'Services whose content changed.';
COMMENT ON COLUMN aifleet.sync_run.services_deleted IS 'Services tombstoned.';
COMMENT ON COLUMN aifleet.sync_run.services_restored IS 'Tombstoned services that reappeared.';
COMMENT ON COLUMN aifleet.sync_run.services_unchanged IS 'Services seen with identical content (not written).';
COMMENT ON COLUMN aifleet.sync_run.resources_staged IS 'Resource records received (after de-duplication).';
COMMENT ON COLUMN aifleet.sync_run.resources_created IS 'Resources seen for the first time.';
COMMENT ON COLUMN aifleet.sync_run.resources_updated IS 'Resources whose content changed.';
COMMENT ON COLUMN aifleet.sync_run.resources_deleted IS 'Resources tombstoned.';
COMMENT ON COLUMN aifleet.sync_run.resources_restored IS 'Tombstoned resources that reappeared.';
COMMENT ON COLUMN aifleet.sync_run.resources_unchanged IS 'Resources seen with identical content (not written).';
COMMENT ON COLUMN aifleet.sync_run.history_rows IS 'Rows the run added to aifleet.history.';
COMMENT ON COLUMN aifleet.sync_run.scopes_complete IS 'Scopes that completed cleanly (eligible for tombstoning).';
COMMENT ON COLUMN aifleet.sync_run.scopes_partial IS 'Scopes reported partial, or complete but with rejected records, or never reported.';
COMMENT ON COLUMN aifleet.sync_run.scopes_failed IS 'Scopes reported failed.';
COMMENT ON COLUMN aifleet.sync_run.rejected IS 'Records rejected (by the normalizers and by the loader''s validation).';
COMMENT ON COLUMN aifleet.sync_run.error IS 'First scope error of the run, if any (never holds a secret).';

-- The per-scope ledger: how "last seen" works. Unchanged rows are never
-- written; an entity was last seen at its scope's last_complete_at.
CREATE TABLE aifleet.scope_state (
	provider text NOT NULL,
	account text NOT NULL,
	region text NOT NULL,
	product text NOT NULL,
	last_run_id bigint NOT NULL REFERENCES aifleet.sync_run (id),
	last_attempt_at timestamptz NOT NULL,
	last_complete_at timestamptz,
	last_state text NOT NULL CHECK (last_state IN ('complete', 'partial', 'failed')),
	last_error text,
	pages bigint NOT NULL DEFAULT 0,
	items bigint NOT NULL DEFAULT 0,
	duplicates bigint NOT NULL DEFAULT 0,
	rejected bigint NOT NULL DEFAULT 0,
	requests bigint NOT NULL DEFAULT 0,
	retries bigint NOT NULL DEFAULT 0,
	throttled bigint NOT NULL DEFAULT 0,
	seconds double precision NOT NULL DEFAULT 0,
	PRIMARY KEY (provider, account, region, product)
);
COMMENT ON TABLE aifleet.scope_state IS 'Ledger per scope (provider x account x region x product): last attempt, last clean completion and the counters of the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.scope_state.account IS 'Account label from the configuration (never a key).';
COMMENT ON COLUMN aifleet.scope_state.region IS 'Cloud region, e.g. cn-beijing.';
COMMENT ON COLUMN aifleet.scope_state.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.scope_state.last_run_id IS 'Last run that attempted this scope.';
COMMENT ON COLUMN aifleet.scope_state.last_attempt_at IS 'Start time of the last run that attempted this scope.';
COMMENT ON COLUMN aifleet.scope_state.last_complete_at IS 'Start time of the last run that collected the scope completely: everything current in the scope was seen then.';
COMMENT ON COLUMN aifleet.scope_state.last_state IS 'complete, partial (incl. rejected records or not reported) or failed, as of the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.last_error IS 'First error of the last attempt, or NULL.';
COMMENT ON COLUMN aifleet.scope_state.pages IS 'Pages fetched in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.items IS 'Items fetched (after de-duplication) in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.duplicates IS 'Items seen twice while paging in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.rejected IS 'Items rejected (normalizer + loader validation) in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.requests IS 'HTTP requests made in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.retries IS 'Requests retried in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.throttled IS 'Requests the provider throttled in the last attempt.';
COMMENT ON COLUMN aifleet.scope_state.seconds IS 'Wall-clock seconds the collection of the scope took.';

-- One id space for instances, services and resources, so that history can
-- key versions by entity_id alone: the exclusion constraint then indexes
-- (bigint, tstzrange), which is much cheaper to maintain than with a text
-- entity type in front.
CREATE SEQUENCE aifleet.entity_id_seq;
COMMENT ON SEQUENCE aifleet.entity_id_seq IS 'Ids of instances, services and resources (one id space, see aifleet.history).';

CREATE TABLE aifleet.instance (
	id bigint PRIMARY KEY DEFAULT nextval('aifleet.entity_id_seq'),
	provider text NOT NULL,
	account text NOT NULL,
	region text NOT NULL,
	product text NOT NULL,
	native_id text NOT NULL CHECK (native_id <> ''),
	name text,
	status text,
	status_raw text,
	charge_type text,
	charge_type_raw text,
	zone text,
	spec text,
	model text,
	created_at timestamptz,
	updated_at timestamptz,
	expires_at timestamptz,
	tags jsonb,
	raw jsonb,
	content_hash bytea NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_changed_at timestamptz NOT NULL,
	deleted_at timestamptz,
	last_run_id bigint NOT NULL,
	CONSTRAINT instance_natural_key UNIQUE (provider, account, product, native_id)
);
CREATE INDEX instance_scope_idx ON aifleet.instance (provider, account, region, product);
COMMENT ON TABLE aifleet.instance IS 'Current state of everything that holds capacity: Tair KVCache instances (tk-...), TI-ONE service groups (ms-...), Hologres AI nodes. Tombstoned rows keep their last content and have deleted_at set.';
COMMENT ON COLUMN aifleet.instance.id IS 'Surrogate key for joins and history.';
COMMENT ON COLUMN aifleet.instance.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.instance.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.instance.region IS 'Cloud region (Tair RegionId, TI-ONE X-TC-Region, Hologres instance region).';
COMMENT ON COLUMN aifleet.instance.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.instance.native_id IS 'Provider id: Tair InstanceId, TI-ONE ServiceGroupId, Hologres aiInstanceId.';
COMMENT ON COLUMN aifleet.instance.name IS 'Display name (Tair InstanceName, TI-ONE ServiceGroupName, Hologres aiInstanceName).';
COMMENT ON COLUMN aifleet.instance.status IS 'Normalized status (see docs/mapping.md).';
COMMENT ON COLUMN aifleet.instance.status_raw IS 'Status exactly as the provider reported it.';
COMMENT ON COLUMN aifleet.instance.charge_type IS 'Normalized charge type: prepaid, postpaid, hybrid or unknown.';
COMMENT ON COLUMN aifleet.instance.charge_type_raw IS 'Charge type exactly as the provider reported it.';
COMMENT ON COLUMN aifleet.instance.zone IS 'Availability zone, when reported.';
COMMENT ON COLUMN aifleet.instance.spec IS 'Instance class / type / AI spec.';
COMMENT ON COLUMN aifleet.instance.model IS 'Model served, when the instance serves exactly one (Tair KVCache).';
COMMENT ON COLUMN aifleet.instance.created_at IS 'Creation time reported by the provider.';
COMMENT ON COLUMN aifleet.instance.updated_at IS 'Last update time reported by the provider.';
COMMENT ON COLUMN aifleet.instance.expires_at IS 'End of a subscription, if any.';
COMMENT ON COLUMN aifleet.instance.tags IS 'Provider tags as a JSON object of strings.';
COMMENT ON COLUMN aifleet.instance.raw IS 'Untouched provider payload (minus secrets such as the Hologres apiKey): every documented field not mapped to a column is here.';
COMMENT ON COLUMN aifleet.instance.content_hash IS 'SHA-256 over all normalized fields and raw (not run ids or observation times); a different hash means a new version.';
COMMENT ON COLUMN aifleet.instance.first_seen_at IS 'Start of the run that first saw the instance.';
COMMENT ON COLUMN aifleet.instance.last_changed_at IS 'Start of the run that last created, changed, deleted or restored it.';
COMMENT ON COLUMN aifleet.instance.deleted_at IS 'Tombstone: start of the run that found it missing from a complete scope; NULL while it exists.';
COMMENT ON COLUMN aifleet.instance.last_run_id IS 'Run that last wrote this row (unchanged rows are not written; see scope_state for last seen).';

CREATE TABLE aifleet.service (
	id bigint PRIMARY KEY DEFAULT nextval('aifleet.entity_id_seq'),
	instance_id bigint NOT NULL REFERENCES aifleet.instance (id),
	provider text NOT NULL,
	account text NOT NULL,
	region text NOT NULL,
	product text NOT NULL,
	native_id text NOT NULL CHECK (native_id <> ''),
	instance_native_id text NOT NULL,
	name text,
	model text,
	model_version text,
	status text,
	status_raw text,
	charge_type text,
	charge_type_raw text,
	replicas double precision,
	created_at timestamptz,
	updated_at timestamptz,
	tags jsonb,
	raw jsonb,
	content_hash bytea NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_changed_at timestamptz NOT NULL,
	deleted_at timestamptz,
	last_run_id bigint NOT NULL,
	CONSTRAINT service_natural_key UNIQUE (provider, account, product, native_id)
);
CREATE INDEX service_scope_idx ON aifleet.service (provider, account, region, product);
CREATE INDEX service_instance_idx ON aifleet.service (instance_id);
COMMENT ON TABLE aifleet.service IS 'Current state of model services: TI-ONE services (ms-...-1), Hologres model services, the model of a Tair KVCache instance.';
COMMENT ON COLUMN aifleet.service.id IS 'Surrogate key for joins and history.';
COMMENT ON COLUMN aifleet.service.instance_id IS 'The instance the service runs on (aifleet.instance.id).';
COMMENT ON COLUMN aifleet.service.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.service.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.service.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.service.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.service.native_id IS 'Provider id of the service (TI-ONE ServiceId, Hologres model service name/id).';
COMMENT ON COLUMN aifleet.service.instance_native_id IS 'Provider id of the owning instance, as reported.';
COMMENT ON COLUMN aifleet.service.name IS 'Display name / description.';
COMMENT ON COLUMN aifleet.service.model IS 'Model served (TI-ONE ModelInfo, Hologres modelName, Tair model).';
COMMENT ON COLUMN aifleet.service.model_version IS 'Model version, when reported.';
COMMENT ON COLUMN aifleet.service.status IS 'Normalized status.';
COMMENT ON COLUMN aifleet.service.status_raw IS 'Status exactly as reported.';
COMMENT ON COLUMN aifleet.service.charge_type IS 'Normalized charge type.';
COMMENT ON COLUMN aifleet.service.charge_type_raw IS 'Charge type exactly as reported.';
COMMENT ON COLUMN aifleet.service.replicas IS 'Replica count (TI-ONE Replicas, Hologres replica count).';
COMMENT ON COLUMN aifleet.service.created_at IS 'Creation time reported by the provider.';
COMMENT ON COLUMN aifleet.service.updated_at IS 'Last update time reported by the provider.';
COMMENT ON COLUMN aifleet.service.tags IS 'Provider tags as a JSON object of strings.';
COMMENT ON COLUMN aifleet.service.raw IS 'Untouched provider payload minus secrets: every documented field not mapped to a column is here.';
COMMENT ON COLUMN aifleet.service.content_hash IS 'SHA-256 over all normalized fields and raw.';
COMMENT ON COLUMN aifleet.service.first_seen_at IS 'Start of the run that first saw the service.';
COMMENT ON COLUMN aifleet.service.last_changed_at IS 'Start of the run that last created, changed, deleted or restored it.';
COMMENT ON COLUMN aifleet.service.deleted_at IS 'Tombstone time, NULL while it exists.';
COMMENT ON COLUMN aifleet.service.last_run_id IS 'Run that last wrote this row.';

CREATE TABLE aifleet.resource (
	id bigint PRIMARY KEY DEFAULT nextval('aifleet.entity_id_seq'),
	instance_id bigint REFERENCES aifleet.instance (id),
	service_id bigint REFERENCES aifleet.service (id),
	provider text NOT NULL,
	account text NOT NULL,
	region text NOT NULL,
	product text NOT NULL,
	owner_kind text NOT NULL CHECK (owner_kind IN ('instance', 'service')),
	owner_native_id text NOT NULL CHECK (owner_native_id <> ''),
	kind text NOT NULL CHECK (kind <> ''),
	capacity double precision CHECK (capacity >= 0),
	used double precision CHECK (used >= 0),
	per_replica double precision CHECK (per_replica >= 0),
	unit text NOT NULL CHECK (unit <> ''),
	gpu_model text,
	basis text,
	content_hash bytea NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_changed_at timestamptz NOT NULL,
	deleted_at timestamptz,
	last_run_id bigint NOT NULL,
	CONSTRAINT resource_natural_key UNIQUE (provider, account, product, owner_kind, owner_native_id, kind),
	CONSTRAINT resource_one_owner CHECK ((owner_kind = 'instance' AND instance_id IS NOT NULL AND service_id IS NULL)
		OR (owner_kind = 'service' AND service_id IS NOT NULL AND instance_id IS NULL))
);
CREATE INDEX resource_scope_idx ON aifleet.resource (provider, account, region, product);
CREATE INDEX resource_instance_idx ON aifleet.resource (instance_id);
CREATE INDEX resource_service_idx ON aifleet.resource (service_id);
COMMENT ON TABLE aifleet.resource IS 'One quantity of one instance or service (narrow, for GROUP BY kind): cpu_cores, memory_gib, gpu_count, gpu_memory_gib, kv_capacity, compute_units, vnodes, ...';
COMMENT ON COLUMN aifleet.resource.id IS 'Surrogate key for joins and history.';
COMMENT ON COLUMN aifleet.resource.instance_id IS 'Owning instance when owner_kind = instance.';
COMMENT ON COLUMN aifleet.resource.service_id IS 'Owning service when owner_kind = service.';
COMMENT ON COLUMN aifleet.resource.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.resource.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.resource.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.resource.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.resource.owner_kind IS 'instance or service.';
COMMENT ON COLUMN aifleet.resource.owner_native_id IS 'Provider id of the owning instance or service.';
COMMENT ON COLUMN aifleet.resource.kind IS 'What is measured: cpu_cores, memory_gib, gpu_count, gpu_memory_gib, kv_capacity, compute_units, vnodes, ...';
COMMENT ON COLUMN aifleet.resource.capacity IS 'Total capacity (for services: all replicas together), in unit.';
COMMENT ON COLUMN aifleet.resource.used IS 'Amount used, where the provider reports usage.';
COMMENT ON COLUMN aifleet.resource.per_replica IS 'Amount per replica, where the provider reports per-replica sizes.';
COMMENT ON COLUMN aifleet.resource.unit IS 'Unit of capacity/used/per_replica: cores, GiB, cards, compute_units, ...';
COMMENT ON COLUMN aifleet.resource.gpu_model IS 'GPU model (A10, T4, ...) for GPU kinds.';
COMMENT ON COLUMN aifleet.resource.basis IS 'How capacity was derived: reported, per_replica_x_replicas, resource_total.';
COMMENT ON COLUMN aifleet.resource.content_hash IS 'SHA-256 over all normalized fields.';
COMMENT ON COLUMN aifleet.resource.first_seen_at IS 'Start of the run that first saw the resource.';
COMMENT ON COLUMN aifleet.resource.last_changed_at IS 'Start of the run that last created, changed, deleted or restored it.';
COMMENT ON COLUMN aifleet.resource.deleted_at IS 'Tombstone time, NULL while it exists.';
COMMENT ON COLUMN aifleet.resource.last_run_id IS 'Run that last wrote this row.';

-- SCD type 2 history of all three entity tables. `valid` is the period a
-- version was current; a deletion is a marker with an empty period, so it
-- never overlaps anything and an as-of query after it finds nothing.
CREATE TABLE aifleet.history (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	entity_type text NOT NULL CHECK (entity_type IN ('instance', 'service', 'resource')),
	entity_id bigint NOT NULL,
	valid tstzrange NOT NULL,
	change text NOT NULL CHECK (change IN ('created', 'updated', 'deleted', 'restored')),
	changed_at timestamptz NOT NULL,
	run_id bigint NOT NULL,
	diff jsonb,
	content jsonb NOT NULL,
	CONSTRAINT history_no_overlap EXCLUDE USING gist (entity_id WITH =, valid WITH &&),
	CONSTRAINT history_deleted_is_empty CHECK ((change = 'deleted') = isempty(valid))
);
CREATE INDEX history_changed_at_idx ON aifleet.history (changed_at);
CREATE INDEX history_open_idx ON aifleet.history (entity_id) WHERE upper_inf(valid);
COMMENT ON TABLE aifleet.history IS 'Every version of every instance, service and resource (SCD type 2), plus deletion markers.';
COMMENT ON COLUMN aifleet.history.id IS 'History row id (orders changes within a run).';
COMMENT ON COLUMN aifleet.history.entity_type IS 'instance, service or resource.';
COMMENT ON COLUMN aifleet.history.entity_id IS 'id in the table named by entity_type (ids are unique across the three tables).';
COMMENT ON COLUMN aifleet.history.valid IS 'Period this version was current: [run start, next change) or [run start,) while current; empty for deletion markers. No two versions of one entity overlap (exclusion constraint).';
COMMENT ON COLUMN aifleet.history.change IS 'created, updated, deleted or restored.';
COMMENT ON COLUMN aifleet.history.changed_at IS 'Start of the run that made the change.';
COMMENT ON COLUMN aifleet.history.run_id IS 'Run that saw the change (aifleet.sync_run.id; no foreign key: runs are append-only and a per-row check would dominate bulk loads).';
COMMENT ON COLUMN aifleet.history.diff IS 'Changed fields {"field": {"old": ..., "new": ...}} for updated and restored (vs the last version); NULL for created and deleted.';
COMMENT ON COLUMN aifleet.history.content IS 'Full row of this version (to_jsonb of the entity row), so as-of queries need nothing else.';

-- Changed fields between two versions of a row, bookkeeping columns excluded.
CREATE FUNCTION aifleet.jsonb_diff(old jsonb, new jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	-- Top-level fields, and one level into the two JSON objects (raw, tags)
	-- so that "what changed" names raw.replicas rather than the whole payload.
	SELECT jsonb_object_agg(k, d ORDER BY k) FROM (
		SELECT k, jsonb_build_object('old', old -> k, 'new', new -> k) AS d
		FROM (SELECT jsonb_object_keys(coalesce(old, '{}') || coalesce(new, '{}')) AS k) keys
		WHERE k NOT IN ('id', 'content_hash', 'first_seen_at', 'last_changed_at', 'deleted_at',
				'last_run_id', 'instance_id', 'service_id', 'raw', 'tags')
		  AND (old -> k) IS DISTINCT FROM (new -> k)
		UNION ALL
		SELECT p || '.' || k, jsonb_build_object('old', old -> p -> k, 'new', new -> p -> k)
		FROM unnest(ARRAY['raw', 'tags']) AS p,
		     LATERAL (SELECT jsonb_object_keys(
				CASE WHEN jsonb_typeof(old -> p) = 'object' THEN old -> p ELSE '{}' END ||
				CASE WHEN jsonb_typeof(new -> p) = 'object' THEN new -> p ELSE '{}' END) AS k) keys
		WHERE (old -> p -> k) IS DISTINCT FROM (new -> p -> k)
	) changed
$$;
COMMENT ON FUNCTION aifleet.jsonb_diff(jsonb, jsonb) IS 'Fields that differ between two row versions as {"field": {"old": .., "new": ..}}, ignoring bookkeeping columns; members of raw and tags are compared one by one ("raw.Replicas", "tags.team").';

-- ==== Read side (views, as-of functions, change feed) ====
-- Read side: views for BI and analysts, as-of functions, the change feed.

CREATE VIEW aifleet.current_instances AS
SELECT i.id, i.provider, i.account, i.region, i.product, i.native_id, i.name,
	i.status, i.status_raw, i.charge_type, i.zone, i.spec, i.model,
	i.created_at, i.updated_at, i.expires_at, i.tags,
	i.first_seen_at, i.last_changed_at, ss.last_complete_at AS last_seen_at
FROM aifleet.instance i
LEFT JOIN aifleet.scope_state ss USING (provider, account, region, product)
WHERE i.deleted_at IS NULL;
COMMENT ON VIEW aifleet.current_instances IS 'Instances that exist now (tombstoned ones excluded), with readable columns.';
COMMENT ON COLUMN aifleet.current_instances.id IS 'Surrogate key (aifleet.instance.id).';
COMMENT ON COLUMN aifleet.current_instances.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.current_instances.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.current_instances.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.current_instances.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.current_instances.native_id IS 'Provider id of the instance.';
COMMENT ON COLUMN aifleet.current_instances.name IS 'Display name.';
COMMENT ON COLUMN aifleet.current_instances.status IS 'Normalized status.';
COMMENT ON COLUMN aifleet.current_instances.status_raw IS 'Status as reported.';
COMMENT ON COLUMN aifleet.current_instances.charge_type IS 'prepaid, postpaid, hybrid or unknown.';
COMMENT ON COLUMN aifleet.current_instances.zone IS 'Availability zone.';
COMMENT ON COLUMN aifleet.current_instances.spec IS 'Instance class / type / AI spec.';
COMMENT ON COLUMN aifleet.current_instances.model IS 'Model served, when one per instance.';
COMMENT ON COLUMN aifleet.current_instances.created_at IS 'Creation time reported by the provider.';
COMMENT ON COLUMN aifleet.current_instances.updated_at IS 'Last update reported by the provider.';
COMMENT ON COLUMN aifleet.current_instances.expires_at IS 'End of subscription, if any.';
COMMENT ON COLUMN aifleet.current_instances.tags IS 'Provider tags (JSON object).';
COMMENT ON COLUMN aifleet.current_instances.first_seen_at IS 'When aifleet first saw it.';
COMMENT ON COLUMN aifleet.current_instances.last_changed_at IS 'When aifleet last saw it change.';
COMMENT ON COLUMN aifleet.current_instances.last_seen_at IS 'Last complete collection of its scope (from aifleet.scope_state).';

CREATE VIEW aifleet.current_services AS
SELECT s.id, s.provider, s.account, s.region, s.product, s.native_id, s.name,
	s.instance_native_id, i.name AS instance_name, s.model, s.model_version,
	s.status, s.status_raw, s.charge_type, s.replicas, s.created_at, s.updated_at, s.tags,
	s.first_seen_at, s.last_changed_at, ss.last_complete_at AS last_seen_at
FROM aifleet.service s
JOIN aifleet.instance i ON i.id = s.instance_id
LEFT JOIN aifleet.scope_state ss ON (ss.provider, ss.account, ss.region, ss.product) = (s.provider, s.account, s.region, s.product)
WHERE s.deleted_at IS NULL;
COMMENT ON VIEW aifleet.current_services IS 'Model services that exist now (tombstoned ones excluded), with their instance.';
COMMENT ON COLUMN aifleet.current_services.id IS 'Surrogate key (aifleet.service.id).';
COMMENT ON COLUMN aifleet.current_services.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.current_services.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.current_services.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.current_services.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.current_services.native_id IS 'Provider id of the service.';
COMMENT ON COLUMN aifleet.current_services.name IS 'Display name.';
COMMENT ON COLUMN aifleet.current_services.instance_native_id IS 'Provider id of the instance it runs on.';
COMMENT ON COLUMN aifleet.current_services.instance_name IS 'Name of the instance it runs on.';
COMMENT ON COLUMN aifleet.current_services.model IS 'Model served.';
COMMENT ON COLUMN aifleet.current_services.model_version IS 'Model version.';
COMMENT ON COLUMN aifleet.current_services.status IS 'Normalized status.';
COMMENT ON COLUMN aifleet.current_services.status_raw IS 'Status as reported.';
COMMENT ON COLUMN aifleet.current_services.charge_type IS 'prepaid, postpaid, hybrid or unknown.';
COMMENT ON COLUMN aifleet.current_services.replicas IS 'Replica count.';
COMMENT ON COLUMN aifleet.current_services.created_at IS 'Creation time reported by the provider.';
COMMENT ON COLUMN aifleet.current_services.updated_at IS 'Last update reported by the provider.';
COMMENT ON COLUMN aifleet.current_services.tags IS 'Provider tags (JSON object).';
COMMENT ON COLUMN aifleet.current_services.first_seen_at IS 'When aifleet first saw it.';
COMMENT ON COLUMN aifleet.current_services.last_changed_at IS 'When aifleet last saw it change.';
COMMENT ON COLUMN aifleet.current_services.last_seen_at IS 'Last complete collection of its scope.';

CREATE VIEW aifleet.current_resources AS
SELECT r.id, r.provider, r.account, r.region, r.product, r.owner_kind, r.owner_native_id,
	coalesce(r.instance_id, s.instance_id) AS instance_id,
	coalesce(i.native_id, si.native_id) AS instance_native_id,
	s.native_id AS service_native_id,
	coalesce(s.model, i.model, si.model) AS model,
	r.kind, r.capacity, r.used, r.per_replica, r.unit, r.gpu_model, r.basis,
	r.first_seen_at, r.last_changed_at
FROM aifleet.resource r
LEFT JOIN aifleet.instance i ON i.id = r.instance_id
LEFT JOIN aifleet.service s ON s.id = r.service_id
LEFT JOIN aifleet.instance si ON si.id = s.instance_id
WHERE r.deleted_at IS NULL;
COMMENT ON VIEW aifleet.current_resources IS 'Resource quantities that exist now, with their owner resolved to instance and service.';
COMMENT ON COLUMN aifleet.current_resources.id IS 'Surrogate key (aifleet.resource.id).';
COMMENT ON COLUMN aifleet.current_resources.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.current_resources.account IS 'Account label from the configuration.';
COMMENT ON COLUMN aifleet.current_resources.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.current_resources.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.current_resources.owner_kind IS 'instance or service.';
COMMENT ON COLUMN aifleet.current_resources.owner_native_id IS 'Provider id of the owner.';
COMMENT ON COLUMN aifleet.current_resources.instance_id IS 'The instance that holds it (directly or through its service).';
COMMENT ON COLUMN aifleet.current_resources.instance_native_id IS 'Provider id of that instance.';
COMMENT ON COLUMN aifleet.current_resources.service_native_id IS 'Provider id of the owning service, if owned by a service.';
COMMENT ON COLUMN aifleet.current_resources.model IS 'Model served by the owning service, else by the instance.';
COMMENT ON COLUMN aifleet.current_resources.kind IS 'cpu_cores, memory_gib, gpu_count, gpu_memory_gib, ...';
COMMENT ON COLUMN aifleet.current_resources.capacity IS 'Total capacity in unit.';
COMMENT ON COLUMN aifleet.current_resources.used IS 'Used amount, where reported.';
COMMENT ON COLUMN aifleet.current_resources.per_replica IS 'Per-replica amount, where reported.';
COMMENT ON COLUMN aifleet.current_resources.unit IS 'Unit.';
COMMENT ON COLUMN aifleet.current_resources.gpu_model IS 'GPU model for GPU kinds.';
COMMENT ON COLUMN aifleet.current_resources.basis IS 'How capacity was derived.';
COMMENT ON COLUMN aifleet.current_resources.first_seen_at IS 'When aifleet first saw it.';
COMMENT ON COLUMN aifleet.current_resources.last_changed_at IS 'When aifleet last saw it change.';

-- Capacity must not be counted twice when both an instance and the services
-- on it report the same kind (a Hologres AI node and its model services): the
-- instance's own figure wins, services count only for kinds their instance
-- does not report. The GPU model of a group is the owner's GPU model, so CPU
-- and memory of a GPU machine land in the same row as its cards.
CREATE VIEW aifleet.capacity_summary AS
WITH r AS (
	SELECT cr.*,
		max(cr.gpu_model) OVER (PARTITION BY cr.owner_kind, cr.provider, cr.account, cr.product, cr.owner_native_id) AS owner_gpu_model
	FROM aifleet.current_resources cr
), counted AS (
	SELECT r.* FROM r
	WHERE r.owner_kind = 'instance'
	   OR NOT EXISTS (SELECT 1 FROM aifleet.resource ir
			WHERE ir.instance_id = r.instance_id AND ir.kind = r.kind AND ir.deleted_at IS NULL)
)
SELECT provider, region, owner_gpu_model AS gpu_model, model,
	count(DISTINCT instance_id) AS instances,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_count'), 0) AS gpu_cards,
	coalesce(sum(capacity) FILTER (WHERE kind = 'gpu_memory_gib'), 0) AS gpu_memory_gib,
	coalesce(sum(capacity) FILTER (WHERE kind = 'cpu_cores'), 0) AS cpu_cores,
	coalesce(sum(capacity) FILTER (WHERE kind = 'memory_gib'), 0) AS memory_gib
FROM counted
GROUP BY provider, region, owner_gpu_model, model;
COMMENT ON VIEW aifleet.capacity_summary IS 'Current capacity by provider, region, GPU model and model: GPU cards, GPU memory, CPU cores, memory. Instance-level figures win over service-level ones of the same kind.';
COMMENT ON COLUMN aifleet.capacity_summary.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.capacity_summary.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.capacity_summary.gpu_model IS 'GPU model of the owner (NULL for CPU-only).';
COMMENT ON COLUMN aifleet.capacity_summary.model IS 'Model served (service model, else instance model).';
COMMENT ON COLUMN aifleet.capacity_summary.instances IS 'Distinct instances contributing.';
COMMENT ON COLUMN aifleet.capacity_summary.gpu_cards IS 'Sum of gpu_count capacity (cards).';
COMMENT ON COLUMN aifleet.capacity_summary.gpu_memory_gib IS 'Sum of gpu_memory_gib capacity (GiB).';
COMMENT ON COLUMN aifleet.capacity_summary.cpu_cores IS 'Sum of cpu_cores capacity (cores).';
COMMENT ON COLUMN aifleet.capacity_summary.memory_gib IS 'Sum of memory_gib capacity (GiB).';

-- As-of: the version whose validity period contains ts. SECURITY DEFINER so
-- that aifleet_reader needs no privilege on the history table itself.
CREATE FUNCTION aifleet.fleet_as_of(ts timestamptz)
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
	WHERE h.valid @> ts
$$;
COMMENT ON FUNCTION aifleet.fleet_as_of(timestamptz) IS 'Every instance, service and resource as it was at ts (one row per entity; content is the full row).';

CREATE FUNCTION aifleet.instances_as_of(ts timestamptz) RETURNS SETOF aifleet.instance
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT (jsonb_populate_record(NULL::aifleet.instance, h.content)).*
	FROM aifleet.history h WHERE h.entity_type = 'instance' AND h.valid @> ts
$$;
COMMENT ON FUNCTION aifleet.instances_as_of(timestamptz) IS 'aifleet.instance rows as they were at ts.';

CREATE FUNCTION aifleet.services_as_of(ts timestamptz) RETURNS SETOF aifleet.service
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT (jsonb_populate_record(NULL::aifleet.service, h.content)).*
	FROM aifleet.history h WHERE h.entity_type = 'service' AND h.valid @> ts
$$;
COMMENT ON FUNCTION aifleet.services_as_of(timestamptz) IS 'aifleet.service rows as they were at ts.';

CREATE FUNCTION aifleet.resources_as_of(ts timestamptz) RETURNS SETOF aifleet.resource
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, aifleet AS $$
	SELECT (jsonb_populate_record(NULL::aifleet.resource, h.content)).*
	FROM aifleet.history h WHERE h.entity_type = 'resource' AND h.valid @> ts
$$;
COMMENT ON FUNCTION aifleet.resources_as_of(timestamptz) IS 'aifleet.resource rows as they were at ts.';

CREATE VIEW aifleet.change_feed AS
SELECT h.changed_at AS time, h.run_id, h.change, h.entity_type,
	h.content ->> 'provider' AS provider, h.content ->> 'account' AS account,
	h.content ->> 'region' AS region, h.content ->> 'product' AS product,
	CASE h.entity_type WHEN 'resource'
		THEN (h.content ->> 'owner_native_id') || '/' || (h.content ->> 'kind')
		ELSE h.content ->> 'native_id' END AS native_id,
	CASE h.entity_type WHEN 'resource' THEN h.content ->> 'kind' ELSE h.content ->> 'name' END AS name,
	h.diff, h.id AS seq
FROM aifleet.history h;
COMMENT ON VIEW aifleet.change_feed IS 'Every change (created, updated, deleted, restored) of every entity; ORDER BY time, seq for the order they were recorded.';
COMMENT ON COLUMN aifleet.change_feed.time IS 'Start of the run that recorded the change.';
COMMENT ON COLUMN aifleet.change_feed.run_id IS 'Run that recorded it (aifleet.sync_run.id).';
COMMENT ON COLUMN aifleet.change_feed.change IS 'created, updated, deleted or restored.';
COMMENT ON COLUMN aifleet.change_feed.entity_type IS 'instance, service or resource.';
COMMENT ON COLUMN aifleet.change_feed.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.change_feed.account IS 'Account label.';
COMMENT ON COLUMN aifleet.change_feed.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.change_feed.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.change_feed.native_id IS 'Provider id (for resources: owner id/kind).';
COMMENT ON COLUMN aifleet.change_feed.name IS 'Name of the entity (for resources: the kind).';
COMMENT ON COLUMN aifleet.change_feed.diff IS 'Changed fields {"field": {"old": .., "new": ..}} for updated and restored.';
COMMENT ON COLUMN aifleet.change_feed.seq IS 'History row id: orders changes within a run.';

CREATE VIEW aifleet.run_status AS
SELECT r.id, r.started_at, r.finished_at, r.finished_at - r.started_at AS duration, r.status, r.trigger,
	r.instances_created + r.services_created + r.resources_created AS created,
	r.instances_updated + r.services_updated + r.resources_updated AS updated,
	r.instances_deleted + r.services_deleted + r.resources_deleted AS deleted,
	r.instances_restored + r.services_restored + r.resources_restored AS restored,
	r.instances_unchanged + r.services_unchanged + r.resources_unchanged AS unchanged,
	r.history_rows, r.rejected, r.error
FROM aifleet.sync_run r;
COMMENT ON VIEW aifleet.run_status IS 'Runs with their totals, for freshness dashboards.';
COMMENT ON COLUMN aifleet.run_status.id IS 'Run id.';
COMMENT ON COLUMN aifleet.run_status.started_at IS 'Start of the run.';
COMMENT ON COLUMN aifleet.run_status.finished_at IS 'End of the merge.';
COMMENT ON COLUMN aifleet.run_status.duration IS 'finished_at - started_at.';
COMMENT ON COLUMN aifleet.run_status.status IS 'succeeded, partial or failed.';
COMMENT ON COLUMN aifleet.run_status.trigger IS 'What started the run.';
COMMENT ON COLUMN aifleet.run_status.created IS 'Entities created (all types).';
COMMENT ON COLUMN aifleet.run_status.updated IS 'Entities updated (all types).';
COMMENT ON COLUMN aifleet.run_status.deleted IS 'Entities tombstoned (all types).';
COMMENT ON COLUMN aifleet.run_status.restored IS 'Entities restored (all types).';
COMMENT ON COLUMN aifleet.run_status.unchanged IS 'Entities unchanged (all types).';
COMMENT ON COLUMN aifleet.run_status.history_rows IS 'History rows written.';
COMMENT ON COLUMN aifleet.run_status.rejected IS 'Records rejected.';
COMMENT ON COLUMN aifleet.run_status.error IS 'First scope error, if any.';

CREATE VIEW aifleet.scope_freshness AS
SELECT provider, account, region, product, last_state, last_attempt_at, last_complete_at,
	now() - last_complete_at AS age, last_error, last_run_id
FROM aifleet.scope_state;
COMMENT ON VIEW aifleet.scope_freshness IS 'Per scope: last state, last clean completion and its age, last error.';
COMMENT ON COLUMN aifleet.scope_freshness.provider IS 'alibaba or tencent.';
COMMENT ON COLUMN aifleet.scope_freshness.account IS 'Account label.';
COMMENT ON COLUMN aifleet.scope_freshness.region IS 'Cloud region.';
COMMENT ON COLUMN aifleet.scope_freshness.product IS 'tair_kvcache, tione or hologres.';
COMMENT ON COLUMN aifleet.scope_freshness.last_state IS 'complete, partial or failed.';
COMMENT ON COLUMN aifleet.scope_freshness.last_attempt_at IS 'Last attempt.';
COMMENT ON COLUMN aifleet.scope_freshness.last_complete_at IS 'Last clean completion (last seen of everything in the scope).';
COMMENT ON COLUMN aifleet.scope_freshness.age IS 'now() - last_complete_at.';
COMMENT ON COLUMN aifleet.scope_freshness.last_error IS 'First error of the last attempt.';
COMMENT ON COLUMN aifleet.scope_freshness.last_run_id IS 'Run of the last attempt.';

-- ==== Read-only role ====
-- Read-only role for BI tools and analysts. NOLOGIN: grant it to real login
-- roles (GRANT aifleet_reader TO metabase). Roles are cluster-wide, so the
-- creation is idempotent for a second database on the same server.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aifleet_reader') THEN
		CREATE ROLE aifleet_reader NOLOGIN;
	END IF;
END
$$;

GRANT USAGE ON SCHEMA aifleet TO aifleet_reader;
GRANT SELECT ON aifleet.current_instances, aifleet.current_services, aifleet.current_resources,
	aifleet.capacity_summary, aifleet.change_feed, aifleet.run_status, aifleet.scope_freshness
	TO aifleet_reader;
-- Functions are executable by PUBLIC by default; revoke that so the
-- SECURITY DEFINER as-of functions are only for the reader (and the owner).
REVOKE EXECUTE ON FUNCTION aifleet.fleet_as_of(timestamptz), aifleet.instances_as_of(timestamptz),
	aifleet.services_as_of(timestamptz), aifleet.resources_as_of(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aifleet.fleet_as_of(timestamptz), aifleet.instances_as_of(timestamptz),
	aifleet.services_as_of(timestamptz), aifleet.resources_as_of(timestamptz) TO aifleet_reader;
