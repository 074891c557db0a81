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
